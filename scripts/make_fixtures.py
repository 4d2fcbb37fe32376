#!/usr/bin/env python3
"""Oracle fixtures from pytorch-grad-cam (pgc) 1.5.7 GradCAM.

For each model (SqueezeNet 1.1, EfficientNet-Lite0: photos chelsea, coffee; ResNet-18
(torchvision layout, seeded random weights): photo chelsea) write
tests/fixtures/<model>_<photo>.safetensors with (all float32 unless noted):

  input                      [1,3,H,W]  preprocessed input tensor (see preprocess.py)
  logits                     [1,1000]   model output (SqueezeNet: GAP(relu(conv10)))
  classes                    [3] int64  target classes: top-1, top-2, 0
  <layer>/<class>/pgc        [H,W]      GradCAM(model,[layer])(input,[ClassifierOutputTarget(class)])[0]
  <layer>/<class>/raw        [h,w]      sum_k w_k A^k, w_k = mean_{h,w} dY_c/dA^k (no ReLU, no norm)
  <layer>/<class>/norm       [h,w]      r = relu(raw); r -= r.min(); r /= (r.max() + 1e-7)
  <layer>/<class>/norelu_norm[h,w]      same normalisation without the ReLU
  <layer>/<class>/norelu_up  [H,W]      cv2.resize(norelu_norm, (W,H), INTER_LINEAR)

Layers: SqueezeNet "fire9", "fire8" (Fire-module outputs, i.e. the channel concat after
ReLU; 13x13x512). Lite0 "head" (head conv -> BN -> ReLU6, 7x7x1280) and "blocks.10"
(output of MBConv block 10 = last block of stage 5, after the residual add, no activation;
14x14x112). ResNet-18 "layer4" (7x7x512) and "layer3" (14x14x256): the whole stage outputs
(target_layers=[model.layer4]), i.e. after the last BasicBlock's residual add + ReLU.

ResNet-18 weights: also written here, to tests/fixtures/resnet18_seed0.safetensors
(torchvision state_dict key names, float32, num_batches_tracked dropped); see make_resnet18().

Usage: make_fixtures.py [squeezenet] [efficientnet_lite0] [resnet18]   (default: all)
"""
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models_pt  # noqa: E402
from preprocess import imagenet_input, lite0_input, load_photo, squeezenet_input  # noqa: E402

from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"
FIX = REPO / "tests" / "fixtures"
PHOTOS = ("chelsea", "coffee")


def pgc_norm(cam):
    """Exactly pytorch_grad_cam.utils.image.scale_cam_image's normalisation (float32)."""
    cam = cam - np.min(cam)
    return cam / (1e-7 + np.max(cam))


def run(model_name, model, layers, prep, photos=PHOTOS):
    for photo in photos:
        x = prep(load_photo(ASSETS / f"{photo}.png"))
        H, W = x.shape[-2:]
        with torch.no_grad():
            logits = model(torch.from_numpy(x)).numpy().astype(np.float32)
        order = np.argsort(-logits[0])
        classes = [int(order[0]), int(order[1]), 0]
        out = {"input": x, "logits": logits, "classes": np.array(classes, np.int64)}
        stats = []
        for lname, layer in layers:
            for c in classes:
                cam = GradCAM(model=model, target_layers=[layer])
                pgc = cam(input_tensor=torch.from_numpy(x.copy()), targets=[ClassifierOutputTarget(c)])[0]
                # pgc's captured activations / gradients of this call (ActivationsAndGradients)
                acts = cam.activations_and_grads.activations[0].numpy()   # [1,C,h,w]
                grads = cam.activations_and_grads.gradients[0].numpy()    # [1,C,h,w]
                # pgc's own model outputs for this call == our logits
                assert np.allclose(cam.outputs.detach().numpy(), logits, atol=1e-4)
                cam.activations_and_grads.release()
                w = np.mean(grads, axis=(2, 3))                          # GradCAM weights [1,C]
                raw = (w[:, :, None, None] * acts).sum(axis=1)[0].astype(np.float32)  # [h,w]
                norm = pgc_norm(np.maximum(raw, 0)).astype(np.float32)
                norelu = pgc_norm(raw).astype(np.float32)
                norelu_up = cv2.resize(norelu, (W, H), interpolation=cv2.INTER_LINEAR)
                # pgc = scale_cam_image(mean over layers of scale_cam_image(relu(raw), (W,H)))
                up = cv2.resize(norm, (W, H))
                d_plain = float(np.abs(up - pgc).max())
                d_renorm = float(np.abs(pgc_norm(up) - pgc).max())
                assert d_renorm < 1e-6, d_renorm
                key = f"{lname}/{c}"
                out[f"{key}/pgc"] = pgc.astype(np.float32)
                out[f"{key}/raw"] = raw
                out[f"{key}/norm"] = norm
                out[f"{key}/norelu_norm"] = norelu
                out[f"{key}/norelu_up"] = norelu_up.astype(np.float32)
                stats.append((key, raw.shape, float(raw.min()), float(raw.max()), d_plain, d_renorm,
                              np.unravel_index(np.argmax(pgc), pgc.shape)))
        path = FIX / f"{model_name}_{photo}.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(path), metadata={
            "generator": f"scripts/make_fixtures.py, grad-cam {version('grad-cam')}, torch {torch.__version__}, "
                         f"opencv {cv2.__version__}, numpy {np.__version__}",
            "model": model_name, "photo": f"assets/{photo}.png",
            "layers": ",".join(l for l, _ in layers), "classes": ",".join(map(str, classes)),
        })
        print(f"{path.relative_to(REPO)}: {os.path.getsize(path)} B  classes={classes} "
              f"logits={[round(float(logits[0, c]), 4) for c in classes]}")
        print("   top-5: " + ", ".join(f"{int(c)}:{float(logits[0, c]):.4f}" for c in order[:5]))
        for key, shp, mn, mx, dp, dr, am in stats:
            print(f"   {key:18s} raw{tuple(shp)} [{mn:+.4g},{mx:+.4g}]  |resize(norm)-pgc|={dp:.2e}"
                  f"  |renorm(resize(norm))-pgc|={dr:.2e}  argmax(pgc)={tuple(int(i) for i in am)}")


RESNET18_WEIGHTS = FIX / "resnet18_seed0.safetensors"
BN_STAT_PASSES, BN_STAT_BATCH = 20, 4


def make_resnet18():
    """torchvision resnet18(weights=None), deterministic, with non-trivial BatchNorms.

    1. torch.manual_seed(0); resnet18(weights=None)  (torchvision's default init: kaiming
       convs, BN weight 1 / bias 0, default fc init).
    2. torch.manual_seed(1); for every BatchNorm2d, in model.modules() order:
       weight ~ U(0.5, 1.5), bias ~ N(0, 0.1^2) (so gamma/beta are not 1/0 and a loader that
       swaps BN tensors is caught).
    3. Still under seed 1: train mode, 20 forward passes (no grad) on
       torch.randn(4, 3, 224, 224) inputs drawn one per pass, BN momentum 0.1 (default), so
       running_mean/var are far from 0/1 and BN in eval mode is not the identity.
    4. eval(); save the state_dict with torchvision key names, float32, dropping the int64
       num_batches_tracked buffers (the Rust loader ignores those keys anyway).
    Step 3 runs convolutions, so the running stats can differ in the last bits between
    CPUs / thread counts; the committed file is the reference.
    """
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None)
    torch.manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.1)
        m.train()
        for _ in range(BN_STAT_PASSES):
            m(torch.randn(BN_STAT_BATCH, 3, 224, 224))
    m.eval()
    sd = {k: v.detach().to(torch.float32).contiguous().numpy()
          for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert all(v.dtype == np.float32 for v in sd.values())
    save_file(sd, str(RESNET18_WEIGHTS), metadata={
        "generator": f"scripts/make_fixtures.py make_resnet18(), torch {torch.__version__}, "
                     f"torchvision {torchvision.__version__}",
        "model": "torchvision.models.resnet18(weights=None), torch.manual_seed(0)",
        "bn": f"seed 1: gamma~U(0.5,1.5), beta~N(0,0.1^2); {BN_STAT_PASSES} train-mode passes on "
              f"randn({BN_STAT_BATCH},3,224,224), momentum 0.1",
        "layout": "torchvision state_dict keys, PyTorch layouts (conv [out,in,kh,kw], fc.weight [1000,512]); "
                  "num_batches_tracked dropped",
    })
    rv = [v for k, v in sd.items() if k.endswith("running_var")]
    rm = [v for k, v in sd.items() if k.endswith("running_mean")]
    print(f"{RESNET18_WEIGHTS.relative_to(REPO)}: {os.path.getsize(RESNET18_WEIGHTS)} B, {len(sd)} tensors, "
          f"{sum(v.size for v in sd.values())} params+buffers; running_mean |.| max "
          f"{max(float(np.abs(v).max()) for v in rm):.3g}, running_var range "
          f"[{min(float(v.min()) for v in rv):.3g}, {max(float(v.max()) for v in rv):.3g}]")


def load_resnet18(path):
    """torchvision resnet18 from the saved file (so the fixture uses exactly the stored weights)."""
    import torchvision
    from safetensors.torch import load_file
    m = torchvision.models.resnet18(weights=None)
    missing, unexpected = m.load_state_dict(load_file(str(path)), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    return m.eval()


def main():
    assert version("grad-cam") == "1.5.7", version("grad-cam")
    which = set(sys.argv[1:]) or {"squeezenet", "efficientnet_lite0", "resnet18"}
    assert which <= {"squeezenet", "efficientnet_lite0", "resnet18"}, which
    torch.manual_seed(0)
    FIX.mkdir(parents=True, exist_ok=True)
    if "squeezenet" in which:
        sq = models_pt.load_squeezenet(ASSETS / "squeezenet1_1.safetensors")
        run("squeezenet", sq, [("fire9", sq.fire9), ("fire8", sq.fire8)], squeezenet_input)
    if "efficientnet_lite0" in which:
        lite = models_pt.load_lite0(ASSETS / "efficientnet_lite0.safetensors")
        run("efficientnet_lite0", lite, [("head", lite.head), ("blocks.10", lite.blocks[10])], lite0_input)
    if "resnet18" in which:
        t0 = time.time()
        make_resnet18()
        rn = load_resnet18(RESNET18_WEIGHTS)
        run("resnet18", rn, [("layer4", rn.layer4), ("layer3", rn.layer3)], imagenet_input, photos=("chelsea",))
        print(f"   resnet18 total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
