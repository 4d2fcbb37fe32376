#!/usr/bin/env python3
"""A small, real `torch.save` file for the `.pth` path of `gradcam::models::load_torchvision`.

Writes tests/fixtures/resnet18_views_f16.pth (4.7 MB): the 102 tensors of a torchvision
ResNet-18 state_dict (`num_batches_tracked` dropped), every one of them a **view into one
float16 storage** of 2,359,360 values in [0.25, 0.75] (after rounding to float16). Tensor number `i` (in state_dict order)
starts at storage offset `(7 i) % 64`, so `conv1.weight` (i = 0) starts at 0, `bn1.weight`
(i = 1) at 7, `bn1.bias` (i = 2) at 14: the Rust test checks that `bn1.weight[j]` equals the
flattened `conv1.weight[7 + j]`, i.e. that the loader honours storage offsets, shared storages
and the float16 -> float32 cast. Not a trained network: a loader fixture.

Usage: make_pth_fixture.py [OUT]   (default tests/fixtures/resnet18_views_f16.pth)
"""
import sys
from pathlib import Path

import torch
import torchvision

REPO = Path(__file__).resolve().parent.parent


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "fixtures" / "resnet18_views_f16.pth"
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    largest = max(v.numel() for v in state.values())
    storage = (torch.rand(largest + 64, dtype=torch.float32) * 0.5 + 0.25).to(torch.float16)
    views = {}
    for i, (key, value) in enumerate(state.items()):
        offset = (i * 7) % 64
        views[key] = storage[offset:offset + value.numel()].view(value.shape)
    torch.save(views, out)
    print(f"{out}: {out.stat().st_size} bytes, {len(views)} tensors in one float16 storage of {storage.numel()}")


if __name__ == "__main__":
    main()
