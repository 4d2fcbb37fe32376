#!/usr/bin/env python3
"""PIL's resizes of the repository's photos, for the Rust test of `gradcam::Resize`.

Writes tests/fixtures/pil_resize.safetensors: uint8 arrays [H, W, 3] (RGB) of

  <photo>/bilinear_<h>x<w>   Image.resize((w, h), BILINEAR)     (shrink, and stretch one side)
  <photo>/bicubic_<h>x<w>    Image.resize((w, h), BICUBIC)
  <photo>/torchvision_224    torchvision.transforms Resize(256) + CenterCrop(224) on the PIL image
  chelsea/small              Image.resize((100, 66), NEAREST): a small photo to enlarge
  chelsea/small_<filter>_227x227   its enlargement with each filter

for the PNG photos chelsea.png (451 x 300) and coffee.png (600 x 400), decoded by PIL. (JPEG
photos are left out: PIL's libjpeg and the Rust `image` crate's decoder may differ by a level
before any resize.) Pillow and torchvision versions go into the metadata.

Usage: make_pil_resize_fixture.py [OUT]
"""
import sys
from pathlib import Path

import numpy as np
import PIL
import torchvision
from PIL import Image
from safetensors.numpy import save_file
from torchvision import transforms

REPO = Path(__file__).resolve().parent.parent
PHOTOS = ["chelsea.png", "coffee.png"]
SIZES = [(224, 224), (150, 333)]  # (h, w)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "fixtures" / "pil_resize.safetensors"
    tensors = {}
    for name in PHOTOS:
        img = Image.open(REPO / "assets" / name).convert("RGB")
        stem = name.split(".")[0]
        for h, w in SIZES:
            tensors[f"{stem}/bilinear_{h}x{w}"] = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR))
            tensors[f"{stem}/bicubic_{h}x{w}"] = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC))
        tv = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
        tensors[f"{stem}/torchvision_224"] = np.asarray(tv(img))
        if stem == "chelsea":
            small = img.resize((100, 66), Image.Resampling.NEAREST)
            tensors["chelsea/small"] = np.asarray(small)
            for label, f in [("bilinear", Image.Resampling.BILINEAR), ("bicubic", Image.Resampling.BICUBIC)]:
                tensors[f"chelsea/small_{label}_227x227"] = np.asarray(small.resize((227, 227), f))
    tensors = {k: np.ascontiguousarray(v, dtype=np.uint8) for k, v in tensors.items()}
    save_file(tensors, str(out), metadata={"pillow": PIL.__version__, "torchvision": torchvision.__version__})
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(tensors)} arrays)")


if __name__ == "__main__":
    main()
