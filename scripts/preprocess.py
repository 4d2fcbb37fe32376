"""Image preprocessing shared by the conversion and fixture scripts.

Resize: PIL `Image.resize((W, H), Image.Resampling.BILINEAR)` of the whole photo to the
model input size (no crop, aspect ratio not kept). Note PIL's BILINEAR on a *downscale*
is an antialiased triangle filter whose support grows with the scale factor, so it is
not the same as a plain 2x2 bilinear sample; the fixtures store the preprocessed tensor
so that consumers do not have to reproduce it.
"""
import numpy as np
from PIL import Image

from models_pt import LITE0_INPUT, SQUEEZENET_INPUT, SQUEEZENET_MEAN_BGR


def load_photo(path):
    return Image.open(path).convert("RGB")


def resize(img, size):
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)  # HWC RGB 0..255


def squeezenet_input(img):
    """-> [1,3,227,227] float32, channels B,G,R, 0..255 minus (103.939,116.779,123.68)."""
    x = resize(img, SQUEEZENET_INPUT)[:, :, ::-1]  # RGB -> BGR
    x = x - np.array(SQUEEZENET_MEAN_BGR, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def lite0_input(img):
    """-> [1,3,224,224] float32, channels R,G,B, (x - 127) / 128."""
    x = (resize(img, LITE0_INPUT) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


IMAGENET_INPUT = 224
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def imagenet_input(img):
    """torchvision-style input -> [1,3,224,224] float32, channels R,G,B,
    (x / 255 - mean) / std with ImageNet mean/std (all arithmetic in float32)."""
    x = resize(img, IMAGENET_INPUT) / np.float32(255.0)
    x = (x - np.array(IMAGENET_MEAN_RGB, np.float32)) / np.array(IMAGENET_STD_RGB, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
