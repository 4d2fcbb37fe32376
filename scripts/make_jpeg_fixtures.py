#!/usr/bin/env python3
"""JPEG fixtures for `tests/jpeg.rs`: files of every kind our decoder must read as Pillow does,
and Pillow's own decode of each.

Writes `tests/fixtures/jpeg/*.jpg` (deterministic: Pillow's encoder on crops of
`assets/quokka.jpg` and on synthetic colour edges + noise; no third-party photos) and
`tests/fixtures/jpeg/pillow.tsv`: per file, `name  width  height  fnv1a64(RGB bytes)`, or
`name  ERROR  <Pillow's message>` where Pillow refuses the file. The RGB bytes are
`np.asarray(Image.open(path).convert("RGB"))`, row-major. FNV-1a (64-bit) is written out in
`tests/jpeg.rs` too, so the test needs no hashing crate.

Kinds: 4:4:4 / 4:2:2 / 4:2:0, quality 50 and 90, progressive, restart markers, optimised tables,
odd and tiny sizes (1x1 .. 33x17), grey, Adobe CMYK (baseline and progressive), RGB without
YCbCr, EXIF orientation (not applied, as in Pillow), an EXIF thumbnail (markers inside APP1), MPO
(two frames: the first is read), trailing data holding FF DA after the end marker, a motion
photo (JPEG + MP4 boxes), truncated files (refused), a scan cut short before the end marker and
corrupt entropy bytes (decoded as libjpeg does), a frame header claiming more pixels than the
scan holds. Also `chelsea_q90.jpg`: `assets/chelsea.png` saved by Pillow at quality 90 (4:2:0),
the photo of the JPEG oracle (`scripts/make_fixtures.py chelsea_jpeg`).

Run: python scripts/make_jpeg_fixtures.py (Pillow 13.0.0, numpy; see requirements.txt)
"""
import io
import struct
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "jpeg"


def photo(w, h):
    """The quokka photo resized to w x h (natural content)."""
    return Image.open(REPO / "assets" / "quokka.jpg").convert("RGB").resize((w, h), Image.Resampling.BICUBIC)


def synthetic(w, h, seed=1):
    """Saturated colour edges, gradients and noise: stresses chroma upsampling and clamping."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = (x * 255 / max(w - 1, 1)) % 256
    g = ((x // 3 + y // 2) % 2) * 255
    b = np.sin(x / 2.3) * np.cos(y / 1.7) * 127 + 128
    a = np.stack([r, g, b], -1) + rng.normal(0, 25, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def save(im, name, **kw):
    im.save(OUT / name, "JPEG", **kw)
    return (OUT / name).read_bytes()


def write(name, data):
    (OUT / name).write_bytes(data)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    odd = photo(227, 301)
    syn = synthetic(113, 97)  # odd sizes: partial MCUs at both edges
    for ss, tag in [(0, "444"), (1, "422"), (2, "420")]:
        save(odd, f"photo_{tag}_q50.jpg", subsampling=ss, quality=50)
        save(syn, f"syn_{tag}_q90.jpg", subsampling=ss, quality=90)
        save(odd, f"photo_{tag}_q75_prog.jpg", subsampling=ss, quality=75, progressive=True)
        save(odd, f"photo_{tag}_q85_rst.jpg", subsampling=ss, quality=85, restart_marker_blocks=5)
        for (w, h) in [(1, 1), (2, 2), (15, 1), (1, 15), (17, 9), (33, 17)]:
            save(synthetic(w, h, seed=w * 100 + h), f"syn{w}x{h}_{tag}.jpg", subsampling=ss, quality=90)
    save(odd, "photo_420_q85_opt.jpg", quality=85, optimize=True)
    save(odd.convert("L"), "photo_gray.jpg", quality=75)
    save(syn.convert("L"), "syn_gray_prog.jpg", quality=90, progressive=True)
    save(odd.convert("CMYK"), "photo_cmyk.jpg", quality=60)
    save(odd.convert("CMYK"), "photo_cmyk_prog.jpg", quality=60, progressive=True)
    save(odd, "photo_keeprgb.jpg", quality=60, keep_rgb=True, subsampling=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": Pillow does not apply it on open, nor do we
    save(odd, "photo_exif_orientation6.jpg", quality=90, exif=exif.tobytes())
    # An EXIF thumbnail: a whole JPEG (SOI, SOS, EOI) inside APP1, as cameras write.
    thumb = io.BytesIO()
    synthetic(16, 12, seed=5).save(thumb, "JPEG", quality=80)
    thumb = thumb.getvalue()
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<I", 26)
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, 56)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + struct.pack("<I", 0))
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1
    save(odd, "photo_exif_thumbnail.jpg", quality=90, exif=b"Exif\x00\x00" + tiff + thumb)
    odd.save(OUT / "mpo_two_frames.jpg", "MPO", save_all=True, append_images=[syn], quality=50)
    base = (OUT / "photo_420_q50.jpg").read_bytes()
    prog = (OUT / "photo_420_q75_prog.jpg").read_bytes()
    assert base.endswith(b"\xff\xd9")
    write("trailing_ffda.jpg", base + b"\xff\xda" + bytes(range(7)) * 20 + b"\x00\xffjunk")
    rng = np.random.default_rng(7)
    mdat = bytearray(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    mdat[100:104] = b"\xff\xd8\xff\xe0"
    mdat[500:502] = b"\xff\xda"
    mdat[900:902] = b"\xff\xd9"
    mdat[1500:1502] = b"\xff\xda"
    ftyp = struct.pack(">I", 24) + b"ftypmp42" + struct.pack(">I", 0) + b"isommp42"
    write("motion_photo.jpg", base + ftyp + struct.pack(">I", 8 + len(mdat)) + b"mdat" + bytes(mdat))
    write("truncated_half.jpg", base[: len(base) // 2])
    write("truncated_no_eoi.jpg", base[:-2])
    write("truncated_progressive.jpg", prog[: len(prog) // 2])
    write("cut_then_eoi.jpg", base[: len(base) // 2] + b"\xff\xd9")
    write("cut_progressive_then_eoi.jpg", prog[: len(prog) // 2] + b"\xff\xd9")
    claim = bytearray((OUT / "syn17x9_420.jpg").read_bytes())
    sof = claim.find(b"\xff\xc0")
    claim[sof + 5:sof + 9] = struct.pack(">HH", 40, 50)
    write("claims_50x40_holds_17x9.jpg", bytes(claim))
    bad = bytearray(base)
    sos = bad.find(b"\xff\xda")
    for k in range(sos + 400, len(bad) - 400, 997):
        if bad[k] != 0xFF and bad[k - 1] != 0xFF:
            bad[k] ^= 0x5A
            if bad[k] == 0xFF:
                bad[k] = 0xFE
    write("corrupt_entropy.jpg", bytes(bad))
    Image.open(REPO / "assets" / "chelsea.png").convert("RGB").save(OUT / "chelsea_q90.jpg", "JPEG", quality=90)

    lines = [f"# Pillow {PIL.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}: "
             "name, width, height, FNV-1a 64 of the RGB bytes (or ERROR and Pillow's message)"]
    names = sorted(p.name for p in OUT.glob("*.jpg")) + ["../../../assets/quokka.jpg"]
    for name in names:
        try:
            with Image.open(OUT / name) as im:
                rgb = np.asarray(im.convert("RGB"))
        except Exception as e:  # noqa: BLE001 -- every refusal is an expected outcome
            lines.append(f"{name}\tERROR\t{type(e).__name__}: {e}".replace(str(OUT) + "/", ""))
            continue
        h, w = rgb.shape[:2]
        lines.append(f"{name}\t{w}\t{h}\t{fnv1a64(rgb.tobytes()):016x}")
    (OUT / "pillow.tsv").write_text("\n".join(lines) + "\n")
    total = sum(p.stat().st_size for p in OUT.glob("*.jpg"))
    print(f"{len(names)} files, {total} bytes of JPEG; {OUT / 'pillow.tsv'}")


if __name__ == "__main__":
    main()
