#!/usr/bin/env python3
"""CPU timing baseline: PyTorch forward and pytorch-grad-cam (pgc) GradCAM.

Models (same weights / target layers as the fixtures where there are any):

  squeezenet  SqueezeNet 1.1, models_pt.py + assets/squeezenet1_1.safetensors, input 227,
              target layer fire9 (13x13x512)
  lite0       EfficientNet-Lite0, models_pt.py + assets/efficientnet_lite0.safetensors,
              input 224, target layer head (1x1 conv -> BN -> ReLU6, 7x7x1280)
  resnet50    torchvision.models.resnet50(weights=None) after torch.manual_seed(0), eval,
              input 224, target layer layer4 (7x7x2048)
  vit_b16     torchvision.models.vit_b_16(weights=None) after torch.manual_seed(0), eval,
              input 224; only the `legrad` mode: torchcam's `LeGrad(model,
              list(model.encoder.layers))` (every block, as ours by default), called after
              `model(x)` with each image's top class; maps at the 14x14 grid

For every row (model, batch) and mode, in a fresh subprocess (so the peak RSS belongs to that
measurement only; torch.set_num_threads(os.cpu_count()) unless --threads):

  forward   `model(x)` under torch.no_grad()
  gradcam   `GradCAM(model, target_layers=[layer])(input_tensor=x, targets=None)`: pgc
  grad-cam++, hires-cam, ..., score-cam, ablation-cam: the same call with that pgc class
            (names as our `Method`s spell them; `gradcam` = `grad-cam`)
            end to end, input tensor -> grayscale CAMs as a numpy [B,H,W] array, targets =
            each image's top-1 class. (pgc's own cost as used in practice: it also computes
            parameter gradients, since the model's parameters require grad, and keeps the
            graph with retain_graph=True.) The GradCAM object is built once, outside the timing.

x = torch.randn(B, 3, S, S) (seed 0, float32). Timing: 2 warm-up calls, then N timed calls
(N chosen from the 2nd warm-up so that the row takes about --seconds, at least 3), each call
timed alone with time.perf_counter(); median and min in ms per call (per batch, not per
image). --quick: 1 warm-up call and 1 timed call (smoke test; the numbers mean nothing).

Output: one JSON object per (model, batch, mode) on stdout; a markdown table on stderr,
after a header with the torch version, thread count and CPU model (/proc/cpuinfo).
`peak_rss_mib` is ru_maxrss of the child (it includes the Python + torch baseline and the
model weights; `setup_rss_mib` is ru_maxrss just before the warm-up, for reference).

Usage:
  bench_pgc.py                                 # all rows: {squeezenet,lite0,resnet50} x {1,8,32}
  bench_pgc.py --rows squeezenet:1,resnet50:8 --modes gradcam
  bench_pgc.py --rows squeezenet:1 --quick     # smoke test
  bench_pgc.py --rows resnet50:64 --device cuda   # on a GPU machine (forward timed with a sync)
Side by side with ours, several alternating runs: scripts/bench_side_by_side.sh.
Run it on an otherwise idle machine; nothing else should be compiling.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ASSETS = REPO / "assets"

MODELS = {
    # name: (input size, target layer description)
    "squeezenet": (227, "fire9"),
    "lite0": (224, "head"),
    "resnet50": (224, "layer4"),
    "vit_b16": (224, "every encoder block"),
}
ALIASES = {"squeezenet1_1": "squeezenet", "efficientnet_lite0": "lite0", "efficientnet-lite0": "lite0"}
DEFAULT_BATCHES = (1, 8, 32)
# Our method names (`Method` in Rust) -> pytorch-grad-cam's class. `gradcam` is kept as the
# name of the Grad-CAM mode of earlier tables.
METHODS = {
    "gradcam": "GradCAM",
    "grad-cam": "GradCAM",
    "grad-cam++": "GradCAMPlusPlus",
    "xgrad-cam": "XGradCAM",
    "hires-cam": "HiResCAM",
    "element-wise-grad-cam": "GradCAMElementWise",
    "layer-cam": "LayerCAM",
    "eigen-cam": "EigenCAM",
    "eigen-grad-cam": "EigenGradCAM",
    "score-cam": "ScoreCAM",
    "ablation-cam": "AblationCAM",
    "fem": "FEM",
    "seg-eigen-cam": "SegEigenCAM",
    "kpca-cam": "KPCA_CAM",
    "random-cam": "RandomCAM",
    "fullgrad": "FullGrad",
}
# Methods only torchcam 0.5 has: its extractor on the same layer, each image's top class, maps
# at the layer's resolution (torchcam does not upsample).
TORCHCAM = {
    "is-cam": "ISCAM",
    "smoothgrad-cam++": "SmoothGradCAMpp",
}
# Grad-CAM's options and guided backpropagation (GuidedBackpropReLUModel explains the first image
# of a batch: run it at batch 1), Deep Feature Factorization (16 concepts, its default), and
# ShapleyCAM with the ReST score of each image's top class (with a logit its Hessian term is 0),
# and SESS over GradCAM with its defaults (12 scales, 122 patches of a 224 x 224 image: run it at
# batch 1).
# torchcam's LeGrad on torchvision's vit_b_16 (random weights), every encoder block, as ours.
OPTIONS = ("grad-cam+eigen-smooth", "grad-cam+aug-smooth", "guided", "dff", "shapley-cam+rest",
           "grad-cam+sess")
MODES = ("forward",) + tuple(METHODS) + tuple(TORCHCAM) + OPTIONS + ("legrad",)


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def build(name):
    """-> (model in eval mode, target layer module, input size)."""
    import torch
    sys.path.insert(0, str(HERE))
    import models_pt
    size, _ = MODELS[name]
    if name == "squeezenet":
        m = models_pt.load_squeezenet(ASSETS / "squeezenet1_1.safetensors")
        return m, m.fire9, size
    if name == "lite0":
        m = models_pt.load_lite0(ASSETS / "efficientnet_lite0.safetensors")
        return m, m.head, size
    if name == "resnet50":
        import torchvision
        torch.manual_seed(0)
        m = torchvision.models.resnet50(weights=None).eval()
        return m, m.layer4, size
    if name == "vit_b16":
        import torchvision
        torch.manual_seed(0)
        m = torchvision.models.vit_b_16(weights=None).eval()
        return m, list(m.encoder.layers), size
    raise ValueError(name)


def child(spec):
    """Run one (model, batch, mode) measurement; print one JSON line."""
    import torch
    threads = spec["threads"] or os.cpu_count()
    torch.set_num_threads(threads)
    model, layer, size = build(spec["model"])
    torch.manual_seed(0)
    x = torch.randn(spec["batch"], 3, size, size, dtype=torch.float32)
    device = spec.get("device", "cpu")
    model, x = model.to(device), x.to(device)

    if spec["mode"] == "forward":
        def call():
            with torch.no_grad():
                out = model(x)
            if device != "cpu":
                torch.cuda.synchronize()  # CUDA launches are asynchronous
            return out
    elif spec["mode"] == "guided":
        import pytorch_grad_cam
        guided = pytorch_grad_cam.GuidedBackpropReLUModel(model=model, device=device)

        def call():
            return guided(x, target_category=None)
    elif spec["mode"] == "shapley-cam+rest":
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST
        cam = pytorch_grad_cam.ShapleyCAM(model=model, target_layers=[layer])
        with torch.no_grad():
            top = model(x).argmax(1).tolist()
        targets = [ClassifierOutputReST(c) for c in top]

        def call():
            out = cam(input_tensor=x, targets=targets)
            assert out.shape == (spec["batch"], size, size), out.shape
            return out
    elif spec["mode"] == "dff":
        import pytorch_grad_cam
        dff = pytorch_grad_cam.DeepFeatureFactorization(model=model, target_layer=layer)

        def call():
            _, maps = dff(x, n_components=16)
            assert len(maps) == spec["batch"], len(maps)
            return maps
    elif spec["mode"] == "legrad":
        from torchcam.methods import LeGrad
        extractor = LeGrad(model, layer)

        def call():
            out = model(x)
            cams = extractor(class_idx=out.argmax(1).tolist())
            assert cams[0].shape[0] == spec["batch"], cams[0].shape
            return cams
    elif spec["mode"] == "grad-cam+sess":
        from pytorch_grad_cam.sess import SESS
        sess = SESS(model=model, target_layers=[layer])

        def call():
            out = sess(input_tensor=x, targets=None)
            assert out.shape == (spec["batch"], size, size), out.shape
            return out
    elif spec["mode"] in OPTIONS:
        import pytorch_grad_cam
        cam = pytorch_grad_cam.GradCAM(model=model, target_layers=[layer])
        smooth = spec["mode"].split("+")[1]

        def call():
            out = cam(input_tensor=x, targets=None, eigen_smooth=smooth == "eigen-smooth",
                      aug_smooth=smooth == "aug-smooth")
            assert out.shape == (spec["batch"], size, size), out.shape
            return out
    elif spec["mode"] in TORCHCAM:
        import torchcam.methods
        cls = getattr(torchcam.methods, TORCHCAM[spec["mode"]])
        # The Score-CAM variants score masks in batches (ours: 32 rows); SmoothGrad-CAM++ runs
        # one noisy forward of the batch per draw.
        chunked = {"batch_size": 32} if spec["mode"] == "is-cam" else {}
        extractor = cls(model, target_layer=layer, input_shape=(3, size, size), **chunked)

        def call():
            with torch.no_grad():
                out = model(x)
            cams = extractor(class_idx=out.argmax(1).tolist())
            assert cams[0].shape[0] == spec["batch"], cams[0].shape
            return cams
    else:
        import pytorch_grad_cam
        cls = getattr(pytorch_grad_cam, METHODS[spec["mode"]])
        cam = cls(model=model, target_layers=[layer])
        if spec["mode"] == "score-cam":
            cam.batch_size = 32  # pgc's default is 16; ours is 32
        if spec["mode"] in ("score-cam", "ablation-cam"):
            import tqdm
            from functools import partialmethod
            tqdm.tqdm.__init__ = partialmethod(tqdm.tqdm.__init__, disable=True)

        def call():
            out = cam(input_tensor=x, targets=None)
            assert out.shape == (spec["batch"], size, size), out.shape
            return out

    setup_rss = maxrss_mib()
    quick = spec["quick"]
    warmup = 1 if quick else spec.get("warmup", 2)
    t_last = None
    for _ in range(warmup):
        t0 = time.perf_counter()
        call()
        t_last = time.perf_counter() - t0
    if quick:
        n = 1
    elif t_last is None:  # --warmup 0: no estimate of a call's time
        n = spec.get("min_iters", 3)
    else:
        n = max(spec.get("min_iters", 3), min(10_000, int(round(spec["seconds"] / max(t_last, 1e-6)))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    row = {
        "model": spec["model"], "batch": spec["batch"], "mode": spec["mode"],
        "target_layer": MODELS[spec["model"]][1] if spec["mode"] != "forward" else None,
        "input_shape": [spec["batch"], 3, size, size],
        "warmup": warmup, "iters": n,
        "median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
        "median_ms_per_image": statistics.median(times) * 1e3 / spec["batch"],
        "peak_rss_mib": round(maxrss_mib(), 1), "setup_rss_mib": round(setup_rss, 1),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_model(),
        "device": device if device == "cpu" else torch.cuda.get_device_name(), "quick": quick,
    }
    if spec["mode"] in TORCHCAM:
        from importlib.metadata import version
        row["torchcam"] = version("torchcam")
    elif spec["mode"] != "forward":
        from importlib.metadata import version
        row["grad_cam"] = version("grad-cam")
    print(json.dumps(row), flush=True)


def parse_rows(s):
    rows = []
    for item in s.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, b = item.partition(":")
        name = ALIASES.get(name, name)
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        batches = [int(b)] if b else list(DEFAULT_BATCHES)
        rows += [(name, bb) for bb in batches]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=None,
                    help="comma-separated model:batch (model alone = batches 1,8,32); models: "
                         + ", ".join(MODELS) + " (default: all x 1,8,32)")
    ap.add_argument("--modes", default="forward,gradcam",
                    help="forward and any of " + ", ".join(METHODS) + " (default forward,gradcam)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up calls (default 2)")
    ap.add_argument("--min-iters", type=int, default=3, help="at least this many timed calls (default 3)")
    ap.add_argument("--seconds", type=float, default=5.0, help="target time per measurement (default 5)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default os.cpu_count())")
    ap.add_argument("--quick", action="store_true", help="1 warm-up + 1 timed call (smoke test)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda (pgc on the GPU)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child))
        return

    rows = parse_rows(a.rows) if a.rows else [(m, b) for m in MODELS for b in DEFAULT_BATCHES]
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    assert set(modes) <= set(MODES), modes
    import torch  # only for the header
    if a.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"--device {a.device}: this torch sees no CUDA device")
    threads = a.threads or os.cpu_count()
    print(f"torch {torch.__version__}, threads {threads} (os.cpu_count() {os.cpu_count()}), "
          f"CPU: {cpu_model()}, python {sys.version.split()[0]}" + (", QUICK (numbers meaningless)" if a.quick else ""),
          file=sys.stderr, flush=True)

    results = {}
    for name, batch in rows:
        for mode in modes:
            spec = {"model": name, "batch": batch, "mode": mode, "threads": a.threads,
                    "seconds": a.seconds, "quick": a.quick, "device": a.device, "warmup": a.warmup,
                    "min_iters": a.min_iters}
            p = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                print(f"FAILED {name}:{batch} {mode} (exit {p.returncode})", file=sys.stderr, flush=True)
                continue
            line = p.stdout.strip().splitlines()[-1]
            print(line, flush=True)
            results[(name, batch, mode)] = json.loads(line)

    def cell(r, key, fmt):
        return format(r[key], fmt) if r else "-"

    hdr = "| model | batch | target | iters | " + " | ".join(
        f"{m} median ms | {m} min ms | {m} peak RSS MiB" for m in modes) + " |"
    print("\n" + hdr, file=sys.stderr)
    print("|" + " --- |" * (4 + 3 * len(modes)), file=sys.stderr)
    for name, batch in rows:
        rs = [results.get((name, batch, m)) for m in modes]
        iters = "/".join(str(r["iters"]) if r else "-" for r in rs)
        cells = " | ".join(f"{cell(r, 'median_ms', '.1f')} | {cell(r, 'min_ms', '.1f')} | "
                           f"{cell(r, 'peak_rss_mib', '.0f')}" for r in rs)
        print(f"| {name} | {batch} | {MODELS[name][1]} | {iters} | {cells} |", file=sys.stderr)


if __name__ == "__main__":
    main()
