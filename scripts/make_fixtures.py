#!/usr/bin/env python3
"""Oracle fixtures for ten CAM methods: a float64 reference plus pytorch-grad-cam (pgc) 1.5.7.

For each model (SqueezeNet 1.1, EfficientNet-Lite0: photos chelsea, coffee; ResNet-18
(torchvision layout, seeded random weights, loaded from the committed
tests/fixtures/resnet18_seed0.safetensors): photo chelsea) write
tests/fixtures/<model>_<photo>.safetensors. Layers: SqueezeNet "fire9", "fire8"; Lite0 "head",
"blocks.10"; ResNet-18 "layer4", "layer3" (the first one listed is the "first layer" below).
Classes: top-1, top-2, 0 of the float32 model. See tests/fixtures/README.md for the meaning of
every key; in short (all float32 unless noted, <c> = decimal class index):

  input [1,3,H,W], logits [1,1000] (float32 model), classes [3] int64
  <layer>/activations            [1,k,h,w]  layer output of a float64 copy of the model
  <layer>/<c>/gradients          [1,k,h,w]  d logit[c] / d activations, float64 model
  <layer>/<c>/gradients_spread   [1,k,h,w]  ReLU-kink envelope (only where nonzero): sum over the
                                            units u of the F.relu / F.relu6 calls after the layer
                                            with |x_u - kink| <= KINK_REL_TOL (1e-6) * max|x| of
                                            |d logit[c]/d out_u * d x_u/d activations|
  M/<layer>/<c>/raw              [h,w]      pgc's arithmetic of method M on exactly the stored
                                            float32 activations / gradients (/ scores), no ReLU
  M/<layer>/<c>/weights          [k]        M in grad_cam, grad_cam_plus_plus, xgrad_cam,
                                            score_cam, ablation_cam
  score_cam/<layer>/<c>/scores   [k]        logit c of input * mask_k, float64 model
  ablation_cam/<layer>/<c>/scores[k]        logit c with channel k of the layer zeroed, float64
  ablation_cam/<layer>/<c>/original [1]     unablated logit c, float64 model
  M/<first layer>/<top-1>/pgc    [H,W]      M(model_f32, [layer])(input, [ClassifierOutputTarget])[0]
  grad_cam/<layer>/<c>/pgc       [H,W]      the same for GradCAM, every layer and class
  grad_cam/<layer>/<c>/norelu_up [H,W]      cv2.resize(pgc-normalised raw without ReLU, (W,H))

Methods (pgc class -> key): GradCAM grad_cam, GradCAMPlusPlus grad_cam_plus_plus, XGradCAM
xgrad_cam, HiResCAM hires_cam, GradCAMElementWise element_wise_grad_cam, LayerCAM layer_cam,
EigenCAM eigen_cam, EigenGradCAM eigen_grad_cam, ScoreCAM score_cam, AblationCAM ablation_cam.

Checks (asserted): pgc's model outputs == logits; every stored pgc map == pgc's two-stage
normalisation of pgc's own raw (recomputed from its captured float32 values) to 1e-6;
softmax(score_cam scores) == pgc's own float32 ScoreCAM weights to 1e-5; ablation_cam weights ==
pgc's float32 AblationCAM weights to 1e-3 * max|pgc| (only on layers whose float32 minimum activation is exactly 0;
pgc ablates signed layers to min - 1e7); at most MAX_NEAR_KINK (50) near-kink units per case.
__metadata__: generator, model, photo, layers, classes, methods, and JSON strings
f32_vs_f64, pgc_vs_reference, kinks, ablation_vs_pgc.

ResNet-18 weights: made once by make_resnet18() (kept here, not called by main(); run
`python -c 'import make_fixtures as m; m.make_resnet18()'` in scripts/ to remake
tests/fixtures/resnet18_seed0.safetensors). main() only loads the committed file.

`chelsea_jpeg` (not part of the default): SqueezeNet on tests/fixtures/jpeg/chelsea_q90.jpg
(scripts/make_jpeg_fixtures.py), decoded by Pillow, Grad-CAM only, layer fire9: the oracle of a
map made from a JPEG file (tests/oracle.rs).

Usage: make_fixtures.py [squeezenet] [efficientnet_lite0] [resnet18] [chelsea_jpeg]
       (default: the first three)
Runs about an hour on 2 busy CPU cores, mostly Lite0's head (1280 channels): Score-CAM and
Ablation-CAM need one forward per channel, in float64 for the reference and float32 for pgc.
"""
import copy
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # pgc's ScoreCAM / AblationCAM progress bars

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models_pt  # noqa: E402
from preprocess import imagenet_input, lite0_input, load_photo, squeezenet_input  # noqa: E402

from pytorch_grad_cam import (AblationCAM, EigenCAM, EigenGradCAM, GradCAM,  # noqa: E402
                              GradCAMElementWise, GradCAMPlusPlus, HiResCAM, LayerCAM,
                              ScoreCAM, XGradCAM)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"
FIX = REPO / "tests" / "fixtures"
PHOTOS = ("chelsea", "coffee")

METHODS = [
    ("grad_cam", GradCAM),
    ("grad_cam_plus_plus", GradCAMPlusPlus),
    ("xgrad_cam", XGradCAM),
    ("hires_cam", HiResCAM),
    ("element_wise_grad_cam", GradCAMElementWise),
    ("layer_cam", LayerCAM),
    ("eigen_cam", EigenCAM),
    ("eigen_grad_cam", EigenGradCAM),
    ("score_cam", ScoreCAM),
    ("ablation_cam", AblationCAM),
]
WEIGHT_METHODS = ("grad_cam", "grad_cam_plus_plus", "xgrad_cam", "score_cam", "ablation_cam")
FORWARD_METHODS = ("score_cam", "ablation_cam")   # weights from extra forwards, not gradients
EIGEN_METHODS = ("eigen_cam", "eigen_grad_cam")   # SVD: sign of the map is arbitrary

BATCH = 64                    # float64 Score-CAM / Ablation-CAM forwards per batch
KINK_REL_TOL = 1e-6           # near kink: |x - kink| <= KINK_REL_TOL * max|x over the op's input|
KINK_REL_TOL_WIDE = 1e-4      # only counted (metadata "kinks"), too many units to use (README)
MAX_NEAR_KINK = 50            # more near-kink units than this in one case: something is wrong
SCORE_TOL = 1e-5              # |softmax(our scores) - pgc ScoreCAM weights|, absolute
ABLATION_TOL = 1e-3           # |our - pgc AblationCAM weights| / max|pgc weights|


def pgc_norm(cam):
    """Exactly pytorch_grad_cam.utils.image.scale_cam_image's normalisation (float32)."""
    cam = cam - np.min(cam)
    return cam / (1e-7 + np.max(cam))


def pgc_map(raw, W, H):
    """pgc's post-processing of one layer's raw map: scale_cam_image(relu(raw), (W,H)) then
    aggregate_multi_layers (relu, mean over the one layer, scale_cam_image again)."""
    up = cv2.resize(np.float32(pgc_norm(np.maximum(raw, 0))), (W, H))
    return np.float32(pgc_norm(np.maximum(up, 0)))


def rel_diff(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def f32(t):
    return np.ascontiguousarray(t.detach().to(torch.float32).numpy())


# --------------------------------------------------------------------------- #
# float64 reference
# --------------------------------------------------------------------------- #

def double_model(model):
    """float64 deep copy; ReLU modules made non-inplace so their inputs survive the forward."""
    m = copy.deepcopy(model).double().eval()
    for mod in m.modules():
        assert not isinstance(mod, torch.nn.Hardtanh), "nn.ReLU6 / Hardtanh modules are not recorded"
        if isinstance(mod, torch.nn.ReLU):
            mod.inplace = False
    return m


class ReluRecorder:
    """Context manager for one float64 forward: keeps the explained layer's output (`A`) and,
    for every F.relu / F.relu6 call made after that layer ran, (op name, kind, input, output).
    nn.ReLU.forward calls F.relu, so torchvision's ReLU modules are caught too. Op names are
    "<innermost module name>:<relu|relu6>#<call index within that module>" ("<root>" for calls
    in the model's own forward)."""

    def __init__(self, model, layer):
        self.model, self.layer = model, layer

    def __enter__(self):
        self.A, self.records, self.stack, self.calls, self.handles = None, [], [], {}, []

        def push(mod, inp, name):
            self.stack.append(name)

        def pop(mod, inp, out):
            self.stack.pop()

        for name, mod in self.model.named_modules():
            self.handles.append(mod.register_forward_pre_hook(lambda m, i, n=name: push(m, i, n)))
            self.handles.append(mod.register_forward_hook(pop))

        def layer_done(mod, inp, out):
            assert self.A is None, "explained layer ran twice"
            self.A = out

        self.handles.append(self.layer.register_forward_hook(layer_done))
        self.saved = (F.relu, F.relu6)
        F.relu, F.relu6 = self._wrap(self.saved[0], "relu"), self._wrap(self.saved[1], "relu6")
        return self

    def __exit__(self, *exc):
        F.relu, F.relu6 = self.saved
        for h in self.handles:
            h.remove()
        return False

    def _wrap(self, fn, kind):
        def patched(input, inplace=False):
            if self.A is None:   # before / inside the explained layer: not recorded
                return fn(input, inplace=inplace)
            assert not inplace
            out = fn(input)
            op = self.stack[-1] if self.stack and self.stack[-1] else "<root>"
            n = self.calls.get((op, kind), 0)
            self.calls[(op, kind)] = n + 1
            self.records.append((f"{op}:{kind}#{n}", kind, input, out))
            return out
        return patched


def reference(model64, layer64, x, classes, case):
    """float64 forward/backward: logits, activations, gradients per class, kink envelope."""
    x64 = torch.from_numpy(x).double()
    with ReluRecorder(model64, layer64) as rec:
        logits = model64(x64)
    A = rec.A
    grads = {c: torch.autograd.grad(logits[0, c], A, retain_graph=True)[0] for c in classes}

    # ReLU kinks after the layer: units whose pre-activation is within rounding of a kink
    near = []   # (op, kink, input tensor, output tensor, flat index)
    wide = {}   # op@kink -> count at KINK_REL_TOL_WIDE
    for op, kind, xin, out in rec.records:
        xd = xin.detach()
        mx = float(xd.abs().max())
        for kink in ((0.0,) if kind == "relu" else (0.0, 6.0)):
            dist = (xd - kink).abs().reshape(-1)
            n_wide = int((dist <= KINK_REL_TOL_WIDE * mx).sum())
            if n_wide:
                wide[f"{op}@{kink:g}"] = n_wide
            for i in torch.nonzero(dist <= KINK_REL_TOL * mx).flatten().tolist():
                near.append((op, kink, xin, out, i))
    print(f"   {case}: {len(rec.records)} ReLU calls after the layer; near-kink units "
          f"{len(near)} at {KINK_REL_TOL:g} * max|x| ({sum(wide.values())} at {KINK_REL_TOL_WIDE:g})", flush=True)
    if len(near) > MAX_NEAR_KINK:
        for op, kink, xin, out, i in near:
            print(f"      {op} @{kink:g}: unit {i} x={float(xin.detach().reshape(-1)[i]):+.3e}")
        raise SystemExit(f"{case}: {len(near)} near-kink units > {MAX_NEAR_KINK}: stopping")

    outs = list({id(o): o for _, _, _, o, _ in near}.values())
    dxdA = {}   # flat unit -> d x_u / d A (class-independent)
    spread, kinks = {}, {}
    for c in classes:
        s = torch.zeros_like(A)
        units, cmax = [], 0.0
        if near:
            g = torch.autograd.grad(logits[0, c], outs, retain_graph=True, allow_unused=True)
            gout = {id(o): gi for o, gi in zip(outs, g)}
            for op, kink, xin, out, i in near:
                gi = gout[id(out)]
                d_out = 0.0 if gi is None else float(gi.reshape(-1)[i])
                key = (op, i)
                if d_out != 0.0:
                    if key not in dxdA:
                        dxdA[key] = torch.autograd.grad(xin.reshape(-1)[i], A, retain_graph=True)[0]
                    cu = (d_out * dxdA[key]).abs()
                    s += cu
                    cmax = max(cmax, float(cu.max()))
                units.append({"op": op, "kink": kink, "unit": i,
                              "x": float(xin.detach().reshape(-1)[i]), "dlogit_dout": d_out})
        if float(s.abs().max()) > 0:
            spread[c] = s
        kinks[str(c)] = {"rel_tol": KINK_REL_TOL, "near_kink_units": len(near),
                         f"units_at_rel_tol_{KINK_REL_TOL_WIDE:g}": wide,
                         "with_nonzero_contribution": sum(u["dlogit_dout"] != 0 for u in units),
                         "max_abs_c_u": cmax, "units": units}
        if near:
            per_op = {}
            for u in units:
                per_op[f"{u['op']}@{u['kink']:g}"] = per_op.get(f"{u['op']}@{u['kink']:g}", 0) + 1
            print(f"      class {c}: near-kink units {per_op}, nonzero contributions "
                  f"{kinks[str(c)]['with_nonzero_contribution']}, max|c_u| {cmax:.3e}, "
                  f"max|gradients| {float(grads[c].abs().max()):.3e}")
    return logits.detach(), A.detach(), {c: g.detach() for c, g in grads.items()}, spread, kinks


def score_logits64(model64, x, acts64):
    """Logits of input * mask_k for every channel k, float64, with pgc ScoreCAM's masks:
    UpsamplingBilinear2d (align_corners=True) to the input size, per-channel min-max."""
    H, W = x.shape[-2:]
    k = acts64.shape[1]
    x64 = torch.from_numpy(x).double()
    out = []
    with torch.no_grad():
        up = torch.nn.UpsamplingBilinear2d(size=(H, W))(acts64)
        flat = up.view(1, k, -1)
        maxs, mins = flat.max(dim=-1)[0][:, :, None, None], flat.min(dim=-1)[0][:, :, None, None]
        up = (up - mins) / (maxs - mins + 1e-8)
        for i in range(0, k, BATCH):
            out.append(model64((x64[:, None] * up[:, i:i + BATCH, None])[0]))
    return torch.cat(out)   # [k, 1000]


def ablation_logits64(model64, layer64, x, k):
    """Logits with channel j of the layer's output set to 0, for every j, float64. A forward hook
    broadcasts the (batch-1) layer output to a batch of copies and zeroes one channel per copy."""
    x64 = torch.from_numpy(x).double()
    chans = {}

    def hook(mod, inp, out):
        ch = chans["now"]
        o = out.expand(len(ch), *out.shape[1:]).clone()
        o[torch.arange(len(ch)), ch] = 0
        return o

    h = layer64.register_forward_hook(hook)
    out = []
    try:
        with torch.no_grad():
            for i in range(0, k, BATCH):
                chans["now"] = torch.arange(i, min(i + BATCH, k))
                out.append(model64(x64))
    finally:
        h.remove()
    return torch.cat(out)   # [k, 1000]


# --------------------------------------------------------------------------- #
# pgc
# --------------------------------------------------------------------------- #

class RecordingTarget(ClassifierOutputTarget):
    """ClassifierOutputTarget that also keeps every 1-D model output row it is applied to, so one
    Score-CAM / Ablation-CAM run (whose forwards do not depend on the class) gives the scores of
    every class."""

    def __init__(self, category):
        super().__init__(category)
        self.rows = []

    def __call__(self, model_output):
        if model_output.ndim == 1:
            self.rows.append(model_output.detach().clone())
        return super().__call__(model_output)


def arith_cam(cls, model32, layer):
    """A pgc CAM object used only for its arithmetic (get_cam_image / get_cam_weights)."""
    cam = cls(model=model32, target_layers=[layer])
    cam.activations_and_grads.release()
    return cam


def pgc_full(cls, model32, layer, x, target):
    """Full pgc call; returns (map [H,W], pgc's own raw from its captured float32 values,
    captured activations, captured gradients or None, get_cam_weights' result or None, outputs)."""
    cam = cls(model=model32, target_layers=[layer])
    captured = {}
    if cls in (ScoreCAM, AblationCAM):
        inner = cam.get_cam_weights

        def gcw(*a, **kw):
            captured["w"] = inner(*a, **kw)
            return captured["w"]
        cam.get_cam_weights = gcw
    out = cam(input_tensor=torch.from_numpy(x.copy()), targets=[target])[0]
    aag = cam.activations_and_grads
    A = aag.activations[0].numpy()
    G = aag.gradients[0].numpy() if aag.gradients else None
    outputs = cam.outputs.detach().numpy()
    aag.release()
    if "w" in captured:
        raw = (captured["w"][:, :, None, None] * A).sum(axis=1)[0]
    else:
        raw = cam.get_cam_image(torch.from_numpy(x.copy()), layer, [target], A, G, False)[0]
    return out, raw, A, G, captured.get("w"), outputs


def score_weights_from_rows(rows, c):
    """pgc ScoreCAM's weights for class c from its recorded forward outputs (same arithmetic)."""
    scores = torch.Tensor([r[c].cpu().item() for r in rows]).view(1, -1)
    return torch.nn.Softmax(dim=-1)(scores).numpy()[0]


def ablation_weights_from_rows(rows, c):
    """pgc AblationCAM's weights for class c: rows[0] = original output, rows[1:] = ablations."""
    original = np.float32([rows[0][c].cpu().item()])[:, None]
    new = np.float32([r[c].cpu().item() for r in rows[1:]])[None, :]
    return ((original - new) / original)[0]


# --------------------------------------------------------------------------- #
# one model
# --------------------------------------------------------------------------- #

def photo_path(photo):
    """A fixture photo's file: assets/<photo>.png, or the JPEG of the JPEG oracle."""
    if photo == "chelsea_jpeg":
        return FIX / "jpeg" / "chelsea_q90.jpg"   # scripts/make_jpeg_fixtures.py
    return ASSETS / f"{photo}.png"


def run(model_name, model, layers, prep, photos=PHOTOS, methods=METHODS):
    model64 = double_model(model)
    names = {id(m): n for n, m in model.named_modules()}
    METHODS = methods  # noqa: N806 -- the methods of this run, by the module's name for them
    method_names = {m for m, _ in METHODS}
    cams = {(m, ln): arith_cam(cls, model, layer) for m, cls in METHODS for ln, layer in layers}
    first = layers[0][0]
    for photo in photos:
        t0 = time.time()
        x = prep(load_photo(photo_path(photo)))
        xt = torch.from_numpy(x.copy())
        H, W = x.shape[-2:]
        with torch.no_grad():
            logits = model(xt).numpy().astype(np.float32)
        order = np.argsort(-logits[0])
        classes = [int(order[0]), int(order[1]), 0]
        top1 = classes[0]
        out = {"input": x, "logits": logits, "classes": np.array(classes, np.int64)}
        meta_f32, meta_pgc, meta_kinks, meta_abl = {}, {}, {}, {}
        print(f"{model_name}_{photo}: classes={classes} "
              f"logits={[round(float(logits[0, c]), 4) for c in classes]}")
        print("   top-5: " + ", ".join(f"{int(c)}:{float(logits[0, c]):.4f}" for c in order[:5]))

        for lname, layer in layers:
            layer64 = model64.get_submodule(names[id(layer)])
            targets = {c: [ClassifierOutputTarget(c)] for c in classes}
            # ---- float64 reference
            logits64, A64, G64, spread, kinks = reference(model64, layer64, x, classes, f"{lname}")
            d_logits = float(np.abs(logits64.numpy() - logits).max())
            print(f"   {lname}: |logits_f64 - logits_f32| max {d_logits:.2e}")
            A = f32(A64)
            out[f"{lname}/activations"] = A
            G = {c: f32(G64[c]) for c in classes}
            for c in classes:
                out[f"{lname}/{c}/gradients"] = G[c]
                if c in spread:
                    out[f"{lname}/{c}/gradients_spread"] = f32(spread[c])
                meta_kinks[f"{lname}/{c}"] = kinks[str(c)]
            k = A.shape[1]
            if {"score_cam", "ablation_cam"} <= method_names:
                t1 = time.time()
                s_logits = score_logits64(model64, x, A64)
                t2 = time.time()
                a_logits = ablation_logits64(model64, layer64, x, k)
                t3 = time.time()
                print(f"   {lname}: float64 Score-CAM {k} forwards {t2 - t1:.0f} s, "
                      f"Ablation-CAM {t3 - t2:.0f} s", flush=True)

            # ---- pgc GradCAM on the float32 model, every class (also pgc's float32 A, G)
            A32 = None
            meta_f32[lname] = {"gradients": {}}
            for c in classes:
                pgc, raw_own, A_own, G_own, _, outputs = pgc_full(GradCAM, model, layer, x, targets[c][0])
                assert np.allclose(outputs, logits, atol=1e-4)
                d = float(np.abs(pgc_map(raw_own, W, H) - pgc).max())
                assert d < 1e-6, (lname, c, d)
                if A32 is None:
                    A32 = A_own
                    meta_f32[lname]["activations"] = rel_diff(A_own, A64.numpy())
                meta_f32[lname]["gradients"][str(c)] = rel_diff(G_own, G64[c].numpy())
                out[f"grad_cam/{lname}/{c}/pgc"] = pgc

            # ---- float32 pgc arithmetic on the stored reference values
            raws = {}
            for c in classes:
                for m, cls in METHODS:
                    base = f"{m}/{lname}/{c}"
                    if m == "score_cam":
                        scores = s_logits[:, c].numpy().astype(np.float32)
                        w = torch.nn.Softmax(dim=-1)(torch.Tensor(scores)).numpy()
                        out[f"{base}/scores"] = scores
                    elif m == "ablation_cam":
                        scores = a_logits[:, c].numpy().astype(np.float32)
                        orig = np.float32([float(logits64[0, c])])
                        w = (orig - scores) / orig
                        out[f"{base}/scores"] = scores
                        out[f"{base}/original"] = orig
                    if m in FORWARD_METHODS:
                        raw = (w[:, None, None] * A[0]).sum(0)
                    else:
                        cam = cams[(m, lname)]
                        raw = cam.get_cam_image(xt, layer, targets[c], A, G[c], eigen_smooth=False)[0]
                        if m in WEIGHT_METHODS:
                            w = cam.get_cam_weights(xt, layer, targets[c], A, G[c])[0]
                    assert raw.dtype == np.float32 and raw.shape == A.shape[2:], (m, raw.dtype, raw.shape)
                    out[f"{base}/raw"] = raw
                    raws[(m, c)] = raw
                    if m in WEIGHT_METHODS:
                        assert w.dtype == np.float32 and w.shape == (k,), (m, w.dtype, w.shape)
                        out[f"{base}/weights"] = w
                out[f"grad_cam/{lname}/{c}/norelu_up"] = cv2.resize(
                    np.float32(pgc_norm(raws[("grad_cam", c)])), (W, H), interpolation=cv2.INTER_LINEAR)

            # ---- full pgc outputs: every method on the first layer, top-1
            own_raws = {}
            if lname == first:
                for m, cls in METHODS:
                    if m == "grad_cam":
                        continue   # stored above
                    tgt = RecordingTarget(top1) if m in FORWARD_METHODS else ClassifierOutputTarget(top1)
                    t4 = time.time()
                    pgc, raw_own, A_own, G_own, w_own, outputs = pgc_full(cls, model, layer, x, tgt)
                    d = float(np.abs(pgc_map(raw_own, W, H) - pgc).max())
                    assert d < 1e-6, (m, d)
                    out[f"{m}/{lname}/{top1}/pgc"] = pgc
                    own_raws[m] = raw_own
                    if m in FORWARD_METHODS:
                        own_raws[m + "/rows"] = tgt.rows
                        own_raws[m + "/w"] = w_own[0]
                        print(f"   {lname}: pgc {m} full call {time.time() - t4:.0f} s", flush=True)
            # pgc Score-CAM / Ablation-CAM on the other layers: weights only
            for m, cls in METHODS:
                if m not in FORWARD_METHODS or m + "/rows" in own_raws:
                    continue
                tgt = RecordingTarget(top1)
                cam = arith_cam(cls, model, layer)
                own_raws[m + "/w"] = cam.get_cam_weights(xt, layer, [tgt], A32, None)[0]
                own_raws[m + "/rows"] = tgt.rows

            if {"score_cam", "ablation_cam"} <= method_names:
                # ---- Score-CAM check: softmax(float64 scores) vs pgc's float32 weights
                rows = own_raws["score_cam/rows"]
                assert len(rows) == k
                assert np.array_equal(score_weights_from_rows(rows, top1), own_raws["score_cam/w"])
                worst = 0.0
                for c in classes:
                    d = float(np.abs(out[f"score_cam/{lname}/{c}/weights"] - score_weights_from_rows(rows, c)).max())
                    worst = max(worst, d)
                    assert d <= SCORE_TOL, (lname, c, d)
                print(f"   {lname}: score_cam |softmax(scores_f64) - pgc weights| max {worst:.2e} "
                      f"(weights max {float(out[f'score_cam/{lname}/{top1}/weights'].max()):.2e})")

                # ---- Ablation-CAM check (pgc ablates to 0 only where the layer's minimum is 0)
                rows = own_raws["ablation_cam/rows"]
                assert len(rows) == k + 1
                assert np.array_equal(ablation_weights_from_rows(rows, top1), own_raws["ablation_cam/w"])
                zero_min = float(A32.min()) == 0.0
                meta_abl[lname] = {"pgc_ablates_to": "0" if zero_min else "min - 1e7 (cumulative in a batch)",
                                   "min_activation_f32": float(A32.min())}
                for c in classes:
                    ours = out[f"ablation_cam/{lname}/{c}/weights"]
                    theirs = ablation_weights_from_rows(rows, c)
                    d = float(np.abs(ours - theirs).max())
                    r = d / float(np.abs(theirs).max())
                    meta_abl[lname][str(c)] = {"max_abs": d, "max_abs_over_max_pgc": r}
                    print(f"   {lname}: ablation_cam class {c}: |ours - pgc| max {d:.2e}, / max|pgc| {r:.2e}"
                          f"{'' if zero_min else '  (not asserted: pgc ablates to min - 1e7 here)'}")
                    if zero_min:
                        assert r <= ABLATION_TOL, (lname, c, d, r)

            # ---- pgc vs reference
            for c in classes:
                for m, _ in METHODS:
                    key = f"{m}/{lname}/{c}/pgc"
                    if key not in out:
                        continue
                    pgc = out[key]
                    raw_ref = raws[(m, c)]
                    entry = {}
                    if m in EIGEN_METHODS:
                        corr = float(np.corrcoef(raw_ref.ravel(), own_raws[m].ravel())[0, 1])
                        sign = 1 if corr >= 0 else -1
                        entry = {"sign": sign, "corr_raw_ref_vs_pgc_raw": corr}
                        raw_ref = np.float32(sign * raw_ref)
                    entry["max_abs"] = float(np.abs(pgc - pgc_map(raw_ref, W, H)).max())
                    meta_pgc[key] = entry
                    print(f"   {key:40s} |pgc - map(raw_ref)| {entry['max_abs']:.2e}"
                          + (f"  sign {entry['sign']:+d} (corr {entry['corr_raw_ref_vs_pgc_raw']:+.6f})"
                             if "sign" in entry else ""))
            print(f"   {lname}: f32_vs_f64 {json.dumps(meta_f32[lname])}", flush=True)

        path = FIX / f"{model_name}_{photo}.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(path), metadata={
            "generator": f"scripts/make_fixtures.py, grad-cam {version('grad-cam')}, torch {torch.__version__}, "
                         f"opencv {cv2.__version__}, numpy {np.__version__}",
            "model": model_name, "photo": str(photo_path(photo).relative_to(REPO)),
            "layers": ",".join(l for l, _ in layers), "classes": ",".join(map(str, classes)),
            "methods": ",".join(m for m, _ in METHODS),
            "f32_vs_f64": json.dumps(meta_f32, sort_keys=True),
            "pgc_vs_reference": json.dumps(meta_pgc, sort_keys=True),
            "kinks": json.dumps(meta_kinks, sort_keys=True),
            "ablation_vs_pgc": json.dumps(meta_abl, sort_keys=True),
        })
        print(f"{path.relative_to(REPO)}: {os.path.getsize(path)} B, {len(out)} tensors, "
              f"{time.time() - t0:.0f} s", flush=True)


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
    assert which <= {"squeezenet", "efficientnet_lite0", "resnet18", "chelsea_jpeg"}, which
    torch.set_num_threads(2)
    torch.manual_seed(0)
    FIX.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if "squeezenet" in which:
        sq = models_pt.load_squeezenet(ASSETS / "squeezenet1_1.safetensors")
        run("squeezenet", sq, [("fire9", sq.fire9), ("fire8", sq.fire8)], squeezenet_input)
    if "efficientnet_lite0" in which:
        lite = models_pt.load_lite0(ASSETS / "efficientnet_lite0.safetensors")
        run("efficientnet_lite0", lite, [("head", lite.head), ("blocks.10", lite.blocks[10])], lite0_input)
    if "resnet18" in which:
        rn = load_resnet18(RESNET18_WEIGHTS)
        run("resnet18", rn, [("layer4", rn.layer4), ("layer3", rn.layer3)], imagenet_input, photos=("chelsea",))
    if "chelsea_jpeg" in which:
        # The JPEG oracle: Pillow decodes the file (libjpeg-turbo), Grad-CAM at fire9 only.
        sq = models_pt.load_squeezenet(ASSETS / "squeezenet1_1.safetensors")
        run("squeezenet", sq, [("fire9", sq.fire9)], squeezenet_input, photos=("chelsea_jpeg",),
            methods=[("grad_cam", GradCAM)])
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
