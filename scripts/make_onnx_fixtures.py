#!/usr/bin/env python3
"""ONNX exports and pytorch-grad-cam oracles for gradcam-onnx (`onnx/tests/`).

Every model is exported with `torch.onnx.export(.., opset_version=17, dynamo=False,
input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"},
"logits": {0: "batch"}})` (BatchNorm folded into the convolutions by the exporter, as users get
it), and explained by pytorch-grad-cam 1.5.7 (pgc) GradCAM on the PyTorch model: batch 2 (the
photos chelsea and coffee), two classes per image, at the model's usual layer and at one layer
inside a residual block. Per model, `<model>.safetensors` holds

  input        [2, 3, H, W]   the batch (PIL-resized photos, the model's normalisation)
  classes      [2, 2] int64   each image's two classes (its top-2 by the float32 model)
  <L>/pgc      [2, 2, H, W]   pgc's GradCAM heatmap of image i, class j, at layer L
  <L>/raw64    [2, 2, h, w]   the raw Grad-CAM map sum_k mean(G_k) A_k of a float64 copy of
                              the model (`make_fixtures.reference`)
  <L>/raw_spread [2, 2, h, w] how far raw64 can move where a ReLU / ReLU6 after the layer has a
                              unit within 1e-6 of its kink (its derivative 0 or 1 by rounding):
                              sum_k mean(S_k) |A_k| for reference's gradient envelope S; 0 elsewhere

with L the layer's gradcam name (`layer4`, or an ONNX node name for the inner layer) and the
metadata `layers` (in order), `pgc_modules` (the PyTorch module pgc hooked for each), and
`pgc_vs_raw64` (pgc's maps against pgc's own post-processing of raw64: how far float32 is).

Small models (64 x 64 inputs), committed with their ONNX files in `onnx/tests/fixtures/` (random weights, seeded;
one with a residual block and a concat, a thin 101-layer ResNet whose graph has more than 200
nodes (burn-onnx partitions it), torchvision MobileNetV2 at width 0.5 with 10 classes). Large
models (`--large`): torchvision ResNet-18 from `tests/fixtures/resnet18_seed0.safetensors`, our
SqueezeNet 1.1 and EfficientNet-Lite0 with their real weights from `assets/`: written to
`$GRADCAM_ONNX_CACHE` (default `target/onnx-large/`), never committed (their weights are in the
repository once already), for the test run with `--ignored`.

Residual layers: torchvision's blocks call one in-place ReLU twice; pgc hooks a module, so it is
run on a copy whose blocks have two non-in-place ReLUs (the same function): the copy's
`layer4[1].relu_a` is the ONNX node `/layer4/layer4.1/relu/Relu` of the original's export.

Usage: make_onnx_fixtures.py [--large | --only-smoothing | --only-sess]
"""
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.numpy import save_file
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models_pt  # noqa: E402
from make_fixtures import double_model, reference  # noqa: E402
from preprocess import imagenet_input, lite0_input, load_photo, squeezenet_input  # noqa: E402

from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SMALL = REPO / "onnx" / "tests" / "fixtures"
LARGE = Path(os.environ.get("GRADCAM_ONNX_CACHE", REPO / "target" / "onnx-large"))
PHOTOS = ("chelsea", "coffee")


def small_input(img):
    """The small models' input: the photo PIL-resized to 64 x 64, ImageNet's normalisation."""
    x = np.asarray(img.resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32) / np.float32(255.0)
    x = (x - np.array((0.485, 0.456, 0.406), np.float32)) / np.array((0.229, 0.224, 0.225), np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


# ------------------------------------------------------------------------------- the models

class TinyResidual(nn.Module):
    """Stem, a residual block, a concat of two branches, a head; 10 classes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = Block(8)
        self.left = nn.Conv2d(8, 6, 3, 2, 1)
        self.right = nn.Conv2d(8, 6, 1, 2)
        self.head = nn.Sequential(nn.Conv2d(12, 16, 3, 1, 1), nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = torch.cat([F.relu(self.left(x)), F.relu(self.right(x))], dim=1)
        x = self.head(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity, then ReLU: two ReLU modules, none in place."""

    def __init__(self, c, stride=1, down=None):
        super().__init__()
        self.conv1 = nn.Conv2d(c if down is None else down[0], c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu_a = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu_b = nn.ReLU()
        self.down = None if down is None else nn.Sequential(
            nn.Conv2d(down[0], c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.relu_a(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu_b(y + (x if self.down is None else self.down(x)))


class RowMixing(nn.Module):
    """A batch mixed after the layers: the pooled features of all images in one row."""

    def __init__(self, tiny):
        super().__init__()
        self.stem, self.fc = tiny.stem, nn.Linear(8, 10)

    def forward(self, x):
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.stem(x), 1), 1)  # [n, 8]
        return self.fc(pooled.reshape(1, -1)[:, :8])


class Flat(nn.Module):
    """An image input and no [n, c, h, w] activation: flattened at once."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1)[:, :8])


def thin_resnet101():
    """torchvision's ResNet-101 topology (Bottleneck blocks [3, 4, 23, 3]) at 1/16 of its
    widths: a graph of over 200 nodes with small weights."""
    class Thin(torchvision.models.resnet.ResNet):
        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = 4, 1, 1, 64
            self.conv1 = nn.Conv2d(3, 4, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            block = torchvision.models.resnet.Bottleneck
            self.layer1 = self._make_layer(block, 4, 3)
            self.layer2 = self._make_layer(block, 8, 4, stride=2)
            self.layer3 = self._make_layer(block, 16, 23, stride=2)
            self.layer4 = self._make_layer(block, 32, 3, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(32 * 4, 10)
    return Thin()


def randomise(model, seed):
    """Seeded weights, and BatchNorm statistics away from the identity (gamma, beta, running
    mean and variance drawn), so folding them matters."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, 0, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0, 0.1)
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


class SeparateReluBasic(torchvision.models.resnet.BasicBlock):
    """torchvision's BasicBlock with a ReLU module per call, none in place."""

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.relu_a(self.bn1(self.conv1(x)))))
        return self.relu_b(y + identity)


class SeparateReluBottleneck(torchvision.models.resnet.Bottleneck):
    """torchvision's Bottleneck with a ReLU module per call, none in place."""

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu_a(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(y)))))
        return self.relu_b(y + identity)


def separate_relus(model):
    """A copy of a torchvision ResNet whose blocks call a ReLU module per call, none in place
    (`relu_a` after the first convolution, `relu_b` after the sum): pgc hooks modules, and an
    in-place ReLU called twice would make it record the wrong tensor."""
    model = copy.deepcopy(model)
    for m in model.modules():
        kind = {torchvision.models.resnet.BasicBlock: SeparateReluBasic,
                torchvision.models.resnet.Bottleneck: SeparateReluBottleneck}.get(type(m))
        if kind is not None:
            m.__class__ = kind
            m.relu_a, m.relu_b = nn.ReLU(), nn.ReLU()
    return model


class Relu6(nn.Module):
    """`F.relu6` as a module, not in place (nn.ReLU6 is a Hardtanh: its calls are not the
    `F.relu6` the float64 reference records kinks of)."""

    def forward(self, x):
        return F.relu6(x)


def separate_relus_mobilenet(model):
    """MobileNetV2 with each in-place nn.ReLU6 replaced by `Relu6` under the same name."""
    model = copy.deepcopy(model)
    for m in model.modules():
        for key, child in list(m._modules.items()):
            if isinstance(child, nn.ReLU6):
                m._modules[key] = Relu6()
    return model


class SegmentationNet(nn.Module):
    """A tiny segmentation network: three classes per pixel at half the input's resolution."""

    def __init__(self, tiny):
        super().__init__()
        self.stem, self.block = tiny.stem, tiny.block
        self.classifier = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.classifier(self.block(self.stem(x)))  # [n, 3, 32, 32]


class Flattened(nn.Module):
    """`model`'s [n, c, h, w] output flattened to [n, c * h * w]: what gradcam explains."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.flatten(self.model(x), 1)


class Head(nn.Module):
    """tiny_residual's features with another head: `out` outputs (1: a binary classifier's
    logit; 8: an embedding)."""

    def __init__(self, tiny, out):
        super().__init__()
        self.stem, self.block, self.head = tiny.stem, tiny.block, tiny.head
        self.left, self.right = tiny.left, tiny.right
        self.fc = nn.Linear(16, out)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = torch.cat([F.relu(self.left(x)), F.relu(self.right(x))], dim=1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.head(x), 1), 1))


# ------------------------------------------------------------------------------- the oracle

def raw_grad_cam64(model, module, x, classes, case):
    """The float64 raw Grad-CAM map of every image and class, and its envelope where a ReLU
    after the layer has a unit within rounding of its kink (`make_fixtures.reference`, one image
    at a time: the gradient envelope S gives |d raw| <= sum_k mean(S_k) |A_k|).
    -> ([n, m, h, w], [n, m, h, w])."""
    model64 = double_model(model)
    names = {id(m): n for n, m in model.named_modules()}
    layer64 = model64.get_submodule(names[id(module)])
    maps, spreads = [], []
    for i in range(x.shape[0]):
        row = [int(c) for c in classes[i]]
        _, A, G, S, _ = reference(model64, layer64, x[i:i + 1], row, f"{case} image {i}")
        maps.append([(G[c].mean(dim=(2, 3), keepdim=True) * A).sum(1)[0].numpy() for c in row])
        spreads.append([
            (S[c].mean(dim=(2, 3), keepdim=True) * A.abs()).sum(1)[0].numpy() if c in S
            else np.zeros(A.shape[2:]) for c in row])
    return np.array(maps), np.array(spreads)


def pgc_heatmaps(model, module, x, classes):
    """pgc GradCAM at `module`: one call per target column (pgc takes one target per image).
    -> [n, m, H, W] float32."""
    out = []
    with GradCAM(model=model, target_layers=[module]) as cam:
        for j in range(classes.shape[1]):
            targets = [ClassifierOutputTarget(int(c)) for c in classes[:, j]]
            out.append(cam(input_tensor=torch.from_numpy(x), targets=targets))
    return np.stack(out, 1).astype(np.float32)


def pgc_map_of(raw, size):
    """pgc's post-processing in float64: ReLU, min-max, resize (cv2 INTER_LINEAR), min-max."""
    import cv2

    def scale(c):
        c = c - c.min()
        return c / (1e-7 + c.max())
    return scale(cv2.resize(scale(np.maximum(raw, 0)), size, interpolation=cv2.INTER_LINEAR))


def make_targets(tiny):
    """pgc's model_targets on small networks, for `onnx/tests/targets.rs`: `targets.safetensors`
    holds per case `<case>/pgc` [2, H, W] (pgc GradCAM, one target per image) and `<case>/raw64`
    [2, h, w] (the float64 raw map of the same target), at the layer `block.relu_a` of each
    network; the networks' ONNX files beside it."""
    from pytorch_grad_cam.utils.model_targets import (  # noqa: PLC0415
        BinaryClassifierOutputTarget, ClassifierOutputSoftmaxTarget, SemanticSegmentationTarget)

    class SimilarityToConceptTarget:
        """pgc's tutorial target (not in the package): cosine similarity to a concept."""

        def __init__(self, features):
            self.features = features

        def __call__(self, model_output):
            return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)

    x = np.concatenate([small_input(load_photo(REPO / "assets" / f"{p}.png")) for p in PHOTOS])
    torch.manual_seed(5)
    segment = SegmentationNet(tiny).eval()
    nn.init.normal_(segment.classifier.weight, 0, 0.5)
    binary, embed = Head(tiny, 1).eval(), Head(tiny, 8).eval()
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 4:20] = 1.0
    concept = torch.linspace(-1.0, 1.0, 8)
    # case -> (network explained by pgc, network exported, pgc target for both images)
    cases = {
        "softmax": (tiny, tiny, ClassifierOutputSoftmaxTarget(2)),
        "binary1": (binary, binary, BinaryClassifierOutputTarget(1)),
        "binary0": (binary, binary, BinaryClassifierOutputTarget(0)),
        "segmentation": (segment, Flattened(segment),
                         SemanticSegmentationTarget(1, mask)),
        "similarity": (embed, embed, SimilarityToConceptTarget(concept)),
    }
    tensors = {"input": x, "mask": mask, "concept": concept.numpy()}
    for case, (model, exported, target) in cases.items():
        module = model.block.relu_a
        with GradCAM(model=model, target_layers=[module]) as cam:
            tensors[f"{case}/pgc"] = cam(input_tensor=torch.from_numpy(x),
                                         targets=[target, target]).astype(np.float32)
        model64 = copy.deepcopy(model).double().eval()
        names = {id(m): n for n, m in model.named_modules()}
        layer64 = model64.get_submodule(names[id(module)])
        saved = {}
        handle = layer64.register_forward_hook(lambda m, i, o: saved.__setitem__("a", o))
        maps = []
        for i in range(2):
            out = model64(torch.from_numpy(x[i:i + 1]).double())[0]
            t = target
            if isinstance(t, SemanticSegmentationTarget):
                t = SemanticSegmentationTarget(1, mask.astype(np.float64))
            if isinstance(t, SimilarityToConceptTarget):
                t = SimilarityToConceptTarget(concept.double())
            g = torch.autograd.grad(t(out).sum(), saved["a"])[0]
            maps.append((g.mean(dim=(2, 3), keepdim=True) * saved["a"]).sum(1)[0].detach().numpy())
        handle.remove()
        tensors[f"{case}/raw64"] = np.array(maps, np.float32)
        name = {"softmax": "tiny_residual", "binary1": "binary", "binary0": "binary",
                "segmentation": "segmentation", "similarity": "embedding"}[case]
        if not (SMALL / f"{name}.onnx").exists() or name != "tiny_residual":
            export(exported.eval(), x, SMALL / f"{name}.onnx")
        print(f"   target {case}: raw {list(tensors[f'{case}/raw64'].shape)}")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              str(SMALL / "targets.safetensors"),
              metadata={"generator": "scripts/make_onnx_fixtures.py (make_targets)"})


def make_guided(thin):
    """pgc's guided backpropagation (`GuidedBackpropReLUModel`) on the thin ResNet-101, whose
    ReLUs are all `torch.nn.ReLU` modules (pgc guides those only), for `onnx/tests/guided.rs`:
    `guided.safetensors` holds `classes` [2] (each image's top class), `pgc` [2, H, W, 3] (pgc's
    float32 result, one image a call as pgc computes it) and `gb64` [2, H, W, 3] (the same from a
    float64 copy of the model)."""
    from pytorch_grad_cam import GuidedBackpropReLUModel  # noqa: PLC0415

    x = np.concatenate([small_input(load_photo(REPO / "assets" / f"{p}.png")) for p in PHOTOS])
    with torch.no_grad():
        classes = thin(torch.from_numpy(x)).argmax(1).numpy().astype(np.int64)
    out = {"classes": classes, "input": x}
    for key, dtype in (("pgc", torch.float32), ("gb64", torch.float64)):
        model = copy.deepcopy(thin).to(dtype).eval()
        gb = GuidedBackpropReLUModel(model=model, device="cpu")
        maps = []
        for i in range(2):
            image = torch.from_numpy(x[i:i + 1]).to(dtype)  # a fresh tensor: pgc accumulates .grad
            maps.append(np.asarray(gb(image, target_category=int(classes[i])), dtype=np.float64))
        out[key] = np.stack(maps).astype(np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(SMALL / "guided.safetensors"),
              metadata={"generator": "scripts/make_onnx_fixtures.py (make_guided)"})
    print(f"   guided: classes {classes.tolist()}, |pgc - gb64| max "
          f"{float(np.abs(out['pgc'] - out['gb64']).max()):.2e} of {float(np.abs(out['gb64']).max()):.2e}")


def ss_cam_noise(seed, image, sample, count):
    """gradcam's `SsCam::noise(image, sample)` (seed `seed`): SplitMix64 from a state keyed by
    the image and the draw, two uniforms in (0, 1] per Box-Muller normal, as float32."""
    mask = (1 << 64) - 1
    state = (seed ^ ((image * 0xD1B54A32D192ED03) & mask) ^ ((sample * 0x8CB92BA72F3D8DD7) & mask))
    j = np.arange(1, 2 * count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(state) + j * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = ((z >> np.uint64(11)) + np.uint64(1)).astype(np.float64) / float(1 << 53)
    u1, u2 = u[0::2], u[1::2]
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)


def smoothgrad_cam_pp(tiny, model64, x, classes, tensors):
    """SmoothGrad-CAM++ at block.relu_a for each image's first class, std 0.3, with gradcam's noise
    (`ss_cam_noise`, seed 0: `SmoothGradCamPlusPlus::noise`) instead of torch's random state.
    N = 1: torchcam 0.5's `SmoothGradCAMpp` on the float64 model, its weights times the
    unperturbed activations (torchcam itself forms the CAM from the last noisy draw's activations
    and weights ReLU by the last draw's gradient: with one draw the latter is the mean). N = 3:
    gradcam's documented formula (the mean gradient), written here from the float64 gradients of
    each draw. Each with the mean powers of G and the activations its bound needs."""
    from torchcam.methods import SmoothGradCAMpp  # noqa: PLC0415
    xs = torch.from_numpy(x).double()
    n = xs.shape[0]
    per_image = int(np.prod(xs.shape[1:]))
    first = torch.from_numpy(classes[:, 0])

    def noise(sample):
        z = np.stack([ss_cam_noise(0, i, sample, per_image) for i in range(n)])
        return torch.from_numpy((z * np.float32(0.3)).astype(np.float32)).double().reshape(xs.shape)

    def activations_and_gradients(inputs):
        """block.relu_a's output and the gradient of each image's first-class logit there."""
        seen = {}
        handle = model64.block.relu_a.register_forward_hook(
            lambda _m, _i, out: seen.__setitem__("a", out))
        try:
            logits = model64(inputs.clone().requires_grad_(True))
        finally:
            handle.remove()
        score = logits[torch.arange(n), first].sum()
        (g,) = torch.autograd.grad(score, seen["a"])
        return seen["a"].detach(), g.detach()

    a64, _ = activations_and_gradients(xs)

    def formula(draws, relu_of=None):
        """Weights from the mean G, G^2, G^3 over the draws, ReLU of the mean gradient
        (gradcam's choice) or of `relu_of`."""
        k = a64.shape[1]
        g = torch.stack(draws)  # [N, n, k, h, w]
        g1, g2, g3 = (g.mean(0).reshape(n, k, -1) for g in (g, g ** 2, g ** 3))
        spread = (g3 * a64.reshape(n, k, -1)).sum(-1, keepdim=True)
        alpha = g2 / (2 * g2 + spread + 1e-8)
        relu = g1 if relu_of is None else relu_of.reshape(n, k, -1)
        return (alpha * torch.relu(relu)).sum(-1), torch.stack([g1, g2, g3], 1)

    for samples in (1, 3):
        draws = [activations_and_gradients(xs + noise(s))[1] for s in range(samples)]
        weights, powers = formula(draws)
        log = {"sample": 0}
        with SmoothGradCAMpp(model64, target_layer=model64.block.relu_a, num_samples=samples,
                             std=0.3, input_shape=tuple(xs.shape[1:])) as ext:
            def ours(size):
                out = noise(log["sample"]).to(xs.dtype)
                log["sample"] += 1
                assert tuple(out.shape) == tuple(size)
                return out
            ext._distrib = type("Ours", (), {"sample": staticmethod(ours)})()
            inner = ext._get_weights

            def logged(*args, **kwargs):
                out = inner(*args, **kwargs)
                log["weights"] = out[0].clone()
                return out
            ext._get_weights = logged
            with torch.no_grad():
                model64(xs)
            ext(class_idx=[int(c) for c in first])
        theirs = log["weights"]
        # torchcam's weights are the formula's with ReLU of the last draw's gradient.
        last_draw, _ = formula(draws, relu_of=draws[-1])
        gap = float((theirs - last_draw).abs().max() / theirs.abs().max())
        print(f"   smoothgrad-cam++, {samples} draws: torchcam's weights vs the formula's {gap:.1e}")
        assert gap < 1e-12, gap
        if samples == 1:
            weights = theirs
        else:
            # torchcam's own weights of the same draws (ReLU of the last draw's gradient).
            tensors[f"sgcampp{samples}/torchcam_w64"] = theirs.numpy().astype(np.float32)
        gamma = max(float(g.abs().max()) for g in draws)
        key = f"sgcampp{samples}"
        tensors[f"{key}/powers"] = powers.numpy().astype(np.float32)  # [2, 3, 8, 1024]
        tensors[f"{key}/w64"] = weights.numpy().astype(np.float32)  # [2, 8]
        tensors[f"{key}/bound_inputs"] = np.array([gamma, float(a64.abs().max())], np.float32)
        tensors["sgcampp/a64"] = a64.numpy().astype(np.float32)  # [2, 8, 32, 32]
        print(f"   {key}: max|G| {gamma:.3e}, max|A| {float(a64.abs().max()):.2f}")


def full_grad(tiny, x, classes, tensors):
    """pgc FullGrad at each image's first class on tiny_residual with every BatchNorm folded into
    the convolution before it (`fuse_conv_bn_eval`, what PyTorch's ONNX export does, so its
    biased layers are the generated model's), in float32 and float64, with the float64 run's
    per-channel magnitudes and ranges for the bound; and on the unfolded model."""
    import pytorch_grad_cam as pgc  # noqa: PLC0415
    from pytorch_grad_cam import fullgrad_cam  # noqa: PLC0415
    from torch.nn.utils.fusion import fuse_conv_bn_eval  # noqa: PLC0415

    def folded(model):
        model = copy.deepcopy(model).eval()
        model.stem[0] = fuse_conv_bn_eval(model.stem[0], model.stem[1])
        model.stem[1] = nn.Identity()
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            setattr(model.block, conv, fuse_conv_bn_eval(getattr(model.block, conv),
                                                         getattr(model.block, bn)))
            setattr(model.block, bn, nn.Identity())
        return model

    targets = [ClassifierOutputTarget(int(c)) for c in classes[:, 0]]
    terms = []
    original = fullgrad_cam.scale_accross_batch_and_channels

    def logged(tensor, size):
        terms.append(np.asarray(tensor, np.float64))
        return original(tensor, size)

    def run(model, xs, log):
        fullgrad_cam.scale_accross_batch_and_channels = logged if log else original
        terms.clear()
        try:
            with pgc.FullGrad(model=model, target_layers=[]) as cam:
                heat = cam(input_tensor=xs, targets=targets)
                biases = [np.abs(b.astype(np.float64)) for b in cam.bias_data]
        finally:
            fullgrad_cam.scale_accross_batch_and_channels = original
        return heat, biases, list(terms)

    fold32 = folded(tiny)
    with torch.no_grad():
        gap = float((fold32(torch.from_numpy(x)) - tiny(torch.from_numpy(x))).abs().max())
    print(f"   fullgrad: folded against unfolded logits {gap:.1e}")
    heat32, _, _ = run(fold32, torch.from_numpy(x), False)
    xs64 = torch.from_numpy(x).double().requires_grad_(True)
    model64 = folded(tiny).double()
    heat64, biases, logged_terms = run(model64, xs64, True)
    # The input term, then each bias's |b G| (in pgc's order, which is its bias_data's).
    input_term, bias_terms = logged_terms[0], logged_terms[1:]
    xs64 = torch.from_numpy(x).double().requires_grad_(True)
    logits = model64(xs64)
    logits[torch.arange(2), torch.from_numpy(classes[:, 0])].sum().backward()
    g_max = xs64.grad.abs().reshape(2, -1).max(1).values.numpy()  # [n]
    rows = []
    for i in range(2):
        row = [(float(np.abs(x[i, c]).max() * g_max[i]), float(np.ptp(input_term[i, c])))
               for c in range(x.shape[1])]
        for bias, term in zip(biases, bias_terms):
            grads = term[i] / np.where(bias[:, None, None] > 0, bias[:, None, None], 1.0)
            layer_max = float(np.abs(grads).max())
            row += [(float(b * layer_max), float(np.ptp(term[i, k]))) for k, b in enumerate(bias)]
        rows.append(row)
    # The float64 sum before pgc's last scaling: its heatmap's range undone.
    sums = []
    for i in range(2):
        total = np.zeros(x.shape[2:])
        for term in [input_term] + bias_terms:
            t = term[i]
            t = t - t.reshape(t.shape[0], -1).min(1)[:, None, None]
            t = t / (1e-7 + t.reshape(t.shape[0], -1).max(1)[:, None, None])
            total = total + np.stack([cv2_resize(c, x.shape[2:]) for c in t]).sum(0)
        sums.append(float(np.ptp(total)))
    heat_unfolded, _, _ = run(copy.deepcopy(tiny).eval(), torch.from_numpy(x), False)
    tensors["fullgrad/pgc"] = heat32.astype(np.float32)  # [2, 64, 64]
    tensors["fullgrad/pgc64"] = heat64.astype(np.float32)
    tensors["fullgrad/terms"] = np.array(rows, np.float32)  # [2, T, 2]
    tensors["fullgrad/sum_range"] = np.array(sums, np.float32)
    tensors["fullgrad/unfolded"] = heat_unfolded.astype(np.float32)
    print(f"   fullgrad: {len(rows[0])} channel terms, sum ranges {sums}, "
          f"|pgc32 - pgc64| {float(np.abs(heat32 - heat64).max()):.1e}, "
          f"|unfolded - folded| {float(np.abs(heat_unfolded - heat32).max()):.2f}")


def cv2_resize(channel, size):
    """pgc's resize of one map: cv2's bilinear, float32."""
    import cv2  # noqa: PLC0415
    return cv2.resize(np.float32(channel), (size[1], size[0])).astype(np.float64)


def road_metrics(tiny, x, classes, tensors):
    """pgc's ROAD (metrics/road.py) on pgc GradCAM's heatmaps (`metrics/maps`) with softmax
    targets of each image's first class: MoRF at 80 and LeRF at 20 without noise (and MoRF's
    imputed inputs), ROADCombined over 10..90 with gradcam's noise passed in (`ss_cam_noise`,
    seed 0, draw = the percentile's index, plus 9 for LeRF, times 0.01, in pgc's [C, N] order),
    and the l1 norm of the float64 model's probability gradient at the imputed inputs (for the
    bound on a score from a difference of the inputs)."""
    from pytorch_grad_cam.metrics import road  # noqa: PLC0415
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget  # noqa: PLC0415
    maps = tensors["metrics/maps"]
    xs = torch.from_numpy(x)
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes[:, 0]]
    model64 = copy.deepcopy(tiny).double().eval()
    imputed_inputs = []

    def l1(inputs):
        inputs = inputs.double().clone().requires_grad_(True)
        probs = torch.softmax(model64(inputs), 1)[torch.arange(2), torch.from_numpy(classes[:, 0])]
        (g,) = torch.autograd.grad(probs.sum(), inputs)
        return g.abs().reshape(2, -1).sum(1).numpy()

    for key, metric in (("morf80", road.ROADMostRelevantFirst(80)),
                        ("lerf20", road.ROADLeastRelevantFirst(20))):
        metric.perturbation.imputer.noise = 0.0
        scores, imputed = metric(xs, maps, targets, tiny, return_visualization=True)
        tensors[f"road/{key}"] = np.asarray(scores, np.float32).reshape(2)
        if key == "morf80":
            tensors["road/morf80/imputed"] = imputed.numpy().astype(np.float32)
        imputed_inputs.append(imputed)
    # ROADCombined with gradcam's noise: each imputation's randn_like replaced, in call order
    # (LeRF's percentiles first, then MoRF's, image by image).
    def combined_with_our_noise(percentiles, run):
        calls = {"n": 0}
        count = len(percentiles)
        original = road.torch.randn_like

        def ours(t):
            call = calls["n"]
            calls["n"] += 1
            step, image = divmod(call, 2)
            draw = step % count + (count if step < count else 0)
            z = ss_cam_noise(0, image, draw, t.numel()).reshape(tuple(t.shape))
            return torch.from_numpy(z).to(t.dtype)

        original_call = road.NoisyLinearImputer.__call__

        def recording(self, img, mask):
            out = original_call(self, img, mask)
            imputed_inputs.append(out[None])
            return out
        road.torch.randn_like = ours
        road.NoisyLinearImputer.__call__ = recording
        try:
            out = run()
        finally:
            road.torch.randn_like = original
            road.NoisyLinearImputer.__call__ = original_call
        assert calls["n"] == 2 * 2 * count, calls
        return out

    combined = combined_with_our_noise(
        [10, 20, 30, 40, 50, 60, 70, 80, 90],
        lambda: road.ROADCombined()(xs, maps, targets, tiny))
    tensors["road/combined"] = np.asarray(combined, np.float32).reshape(2)
    # ARCC's parts: pgc's Complexity, its Coherency with GradCAM at block.relu_a and logit
    # targets, ROADCombined at 20, 40, 60, 80 with softmax targets and our noise; then its formula.
    from pytorch_grad_cam.metrics import arcc  # noqa: PLC0415
    import pytorch_grad_cam as pgc  # noqa: PLC0415
    logit_targets = [ClassifierOutputTarget(int(c)) for c in classes[:, 0]]
    with pgc.GradCAM(model=tiny, target_layers=[tiny.block.relu_a]) as cam:
        coherency = arcc.Coherency()(xs, maps, logit_targets, tiny, cam)
    complexity = arcc.Complexity()(maps)
    road4 = combined_with_our_noise(
        [20, 40, 60, 80],
        lambda: road.ROADCombined(percentiles=[20, 40, 60, 80])(xs, maps, targets, tiny))
    road4 = (road4 * 2).clip(0, 1)
    score = 3 * ((1 / (coherency + 1e-8)) + (1 / ((1 - complexity) + 1e-8))
                 + (1 / (road4 + 1e-8))) ** (-1)
    # The masked images Coherency explains, with their float64 Grad-CAM maps and pgc's heatmaps
    # (for the bound on the re-explained heatmaps).
    masked = (x * maps[:, None]).astype(np.float32)
    first = classes[:, :1]
    raw, spread = raw_grad_cam64(tiny, tiny.block.relu_a, masked, first, "arcc masked")
    tensors["arcc/masked/raw64"] = raw.astype(np.float32)  # [2, 1, 32, 32]
    tensors["arcc/masked/raw_spread"] = spread.astype(np.float32)
    tensors["arcc/masked/pgc"] = pgc_heatmaps(tiny, tiny.block.relu_a, masked, first)
    for key, value in (("coherency", coherency), ("complexity", complexity), ("road", road4),
                       ("arcc", score)):
        tensors[f"arcc/{key}"] = np.asarray(value, np.float32).reshape(2)
    print(f"   arcc: {score.tolist()} (coherency {coherency.tolist()}, "
          f"complexity {complexity.tolist()}, road {road4.tolist()})")
    worst = 0.0
    for imputed in imputed_inputs:
        if imputed.shape[0] == 2:
            worst = max(worst, float(l1(imputed).max()))
    for one in [t for t in imputed_inputs if t.shape[0] == 1]:
        pair = torch.cat([one, one])
        worst = max(worst, float(l1(pair).max()))
    tensors["road/gradient_l1"] = np.array([worst, worst], np.float32)
    print(f"   road: morf80 {tensors['road/morf80'].tolist()}, lerf20 {tensors['road/lerf20'].tolist()}, "
          f"combined {tensors['road/combined'].tolist()}, max l1 {worst:.3f}")


def deep_feature_factorization(tiny, x, tensors):
    """pgc's DeepFeatureFactorization at block.relu_a, 4 concepts, with scikit-learn's NMF started
    from gradcam's seeded start (`FactorizationConfig`, seed 0: `|a N|` from `ss_cam_noise` draw 0
    for H, draw 1 for W, `a = sqrt(mean(X) / k)`) and run in float64 on pgc's own float32 `X`
    (scikit-learn's solver `cd`, tol 1e-4, 200 sweeps at most, as pgc's `NMF(init='random')`).

      dff/a32         [2, 8, 32, 32]  the float32 activations pgc factorised
      dff/concepts    [4, 8]          pgc's concepts (W + the channels' minima), transposed
      dff/layer_maps  [2, 4, 32, 32]  its H per image (unnormalised)
      dff/maps        [2, 4, 64, 64]  its explanations (scale_cam_image: min-max, then resize)
      dff/iterations  [1]             the sweeps scikit-learn ran
      dff/float32     [3]             the same NMF in float32 (pgc's dtype): its sweeps, and its
                                      largest |W| and |H| difference from the float64 factors
    """
    from sklearn.decomposition import NMF  # noqa: PLC0415
    from pytorch_grad_cam.feature_factorization import deep_feature_factorization as dffm  # noqa: PLC0415

    log = {}

    def start(xx, k, dtype):
        rows, cols = xx.shape
        a = np.sqrt(xx.astype(np.float64).mean() / k)
        h0 = np.abs(a * ss_cam_noise(0, 0, 0, k * cols).astype(np.float64)).reshape(k, cols)
        w0 = np.abs(a * ss_cam_noise(0, 0, 1, rows * k).astype(np.float64)).reshape(rows, k)
        return w0.astype(dtype), h0.astype(dtype)

    class SeededNMF:
        def __init__(self, n_components, init, random_state):
            assert (init, random_state) == ("random", 0)
            self.k = n_components

        def fit_transform(self, x32):
            log["x32"] = x32.copy()
            xx = x32.astype(np.float64)
            w0, h0 = start(xx, self.k, np.float64)
            model = NMF(n_components=self.k, init="custom", solver="cd", tol=1e-4, max_iter=200)
            w = model.fit_transform(xx, W=w0, H=h0)
            self.components_ = model.components_
            log["n_iter"] = model.n_iter_
            log["w"], log["h"] = w, model.components_
            return w

    original = dffm.NMF
    dffm.NMF = SeededNMF
    activations = {}

    def keep(module, inputs, output):
        activations.setdefault("a", output.detach().numpy().copy())

    hook = tiny.block.relu_a.register_forward_hook(keep)
    try:
        dff = dffm.DeepFeatureFactorization(model=tiny, target_layer=tiny.block.relu_a)
        concepts, maps = dff(torch.from_numpy(x), n_components=4)
    finally:
        dffm.NMF = original
        hook.remove()
    tensors["dff/a32"] = activations["a"]
    k = 4
    n, c, h, w = activations["a"].shape
    tensors["dff/concepts"] = concepts.T.astype(np.float32)  # [4, 8]
    tensors["dff/layer_maps"] = log["h"].reshape(k, n, h, w).transpose(1, 0, 2, 3).astype(np.float32)
    tensors["dff/maps"] = np.stack(maps).astype(np.float32)  # [2, 4, 64, 64]
    tensors["dff/iterations"] = np.array([log["n_iter"]], np.float32)
    w0, h0 = start(log["x32"], k, np.float32)
    model = NMF(n_components=k, init="custom", solver="cd", tol=1e-4, max_iter=200)
    w32 = model.fit_transform(log["x32"], W=w0, H=h0)
    gap = [model.n_iter_, float(np.abs(w32 - log["w"]).max()),
           float(np.abs(model.components_ - log["h"]).max())]
    tensors["dff/float32"] = np.array(gap, np.float32)
    print(f"   dff: {log['n_iter']} sweeps; float32 NMF: {gap}; max W {np.abs(log['w']).max():.3f}"
          f" max H {np.abs(log['h']).max():.3f}")


def shapley_cam(tiny, x, classes, tensors):
    """pgc's ShapleyCAM at block.relu_a with the paper's ReST score (`ClassifierOutputReST`) of
    each image's first class, on the float32 model and on a float64 copy (pgc's double backward
    gives the Hessian-vector product):

      shapley/pgc    [2, 1, 64, 64]  pgc's heatmaps (float32 model)
      shapley/w64    [2, 8]          its channel weights mean_ij(G - HVP / 2), float64 model
      shapley/g64    [2, 8]          mean_ij(G) alone (Grad-CAM's weights for the same score)
      shapley/raw64  [2, 1, 32, 32]  sum_k w64_k A_k
      shapley/scale  [2, 3]          max|G|, max|HVP|, max|A| of the float64 run
    """
    import pytorch_grad_cam as pgc  # noqa: PLC0415
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST  # noqa: PLC0415

    original = pgc.ShapleyCAM.get_cam_weights
    log = []

    def logged(self, input_tensor, target_layer, target_category, activations, grads):
        hvp = torch.autograd.grad(outputs=grads, inputs=activations, grad_outputs=activations,
                                  retain_graph=True, allow_unused=True)[0]
        weights = original(self, input_tensor, target_layer, target_category, activations, grads)
        log.append((activations.detach().clone(), grads.detach().clone(), hvp.detach().clone(),
                    weights))
        return weights

    pgc.ShapleyCAM.get_cam_weights = logged
    targets = [ClassifierOutputReST(int(c)) for c in classes[:, 0]]
    try:
        with pgc.ShapleyCAM(model=tiny, target_layers=[tiny.block.relu_a]) as cam:
            heat = cam(input_tensor=torch.from_numpy(x), targets=targets)  # [2, H, W]
        model64 = copy.deepcopy(tiny).double().eval()
        with pgc.ShapleyCAM(model=model64, target_layers=[model64.block.relu_a]) as cam:
            cam(input_tensor=torch.from_numpy(x).double(), targets=targets)
    finally:
        pgc.ShapleyCAM.get_cam_weights = original
    a, g, hvp, w64 = log[-1]
    tensors["shapley/pgc"] = heat[:, None].astype(np.float32)
    tensors["shapley/w64"] = np.asarray(w64, np.float32)
    tensors["shapley/g64"] = g.mean(dim=(2, 3)).numpy().astype(np.float32)
    tensors["shapley/raw64"] = torch.einsum("nk,nkhw->nhw", torch.from_numpy(np.asarray(w64)), a
                                            ).numpy()[:, None].astype(np.float32)
    tensors["shapley/scale"] = np.array(
        [[float(g[i].abs().max()), float(hvp[i].abs().max()), float(a[i].abs().max())]
         for i in range(len(x))], np.float32)
    print(f"   shapley: |w64 - g64| max {np.abs(tensors['shapley/w64'] - tensors['shapley/g64']).max():.2e},"
          f" |w64| max {np.abs(tensors['shapley/w64']).max():.2e}")


def make_smoothing(tiny):
    """pgc's `eigen_smooth` and `aug_smooth`, and its FEM, on tiny_residual at `block.relu_a` ([n, 8, 32, 32]),
    for `onnx/tests/smoothing.rs`. pgc's `get_2d_projection` takes the sign LAPACK returns; here
    it is wrapped to apply gradcam's documented rule (the component correlates positively with
    the channel sum of what it projects, the unsmoothed map) to pgc's own SVD, so both sides can
    be compared. `smoothing.safetensors` holds

      input                [2, 3, 64, 64]
      classes              [2, 2] int64   each image's top-2 classes (the first explained)
      eigen/<method>/pgc   [2, 1, 64, 64] pgc's heatmap with eigen_smooth
      eigen/<method>/raw32 [2, 1, 32, 32] pgc's projection (its raw map before the ReLU)
      eigen/<method>/raw64 [2, 1, 32, 32] the projection of a float64 copy of the model
      eigen/<method>/svd   [2, 1, 3]      its s_1, s_2 and the largest |contribution|
      aug/pgc              [2, 64, 64]    pgc GradCAM with aug_smooth
      fem/pgc              [2, 1, 64, 64] pgc FEM (no eigen_smooth; the classes play no part)
      fem/raw64            [2, 1, 32, 32] its map from a float64 copy of the model
      fem/w64              [2, 8]         its channel weights
      fem/ambiguous        [2, 8]         pixels per channel within rounding of the threshold
      fem/max_a            [2]            the largest |activation| of each image
      aug/raw64            [6, 2, 32, 32] the float64 raw Grad-CAM map of each augmented input,
                                          in ttach's order (flip off/on x factor 0.9, 1, 1.1)
      <m>/pgc, <m>/raw32   for m = seg-eigen-cam, kpca-cam: as for eigen/
      seg-eigen-cam/raw64  [2, 1, 32, 32] as for eigen/
      seg-eigen-cam/log    [2, 4]         s_1, s_2, max|C| (C = |G| A), | |max| - |min| | of raw64
      kpca-cam/a32         [2, 8, 32, 32] the float32 activations pgc's KPCA-CAM saw
      kpca-cam/ref64       [2, 1, 32, 32] their kernel PCA map in float64 (sklearn's sign)
      kpca-cam/log         [2, 3]         its lambda_1, lambda_2 and |K~|_F
      finer/pgc            [2, 1, 64, 64] pgc FinerCAM (GradCAM, alpha 1, top class, 3 nearest)
      finer/raw64          [2, 1, 32, 32] its raw map from the float64 model
      finer/margin         [2]            4th minus 3rd nearest logit distance (float64)
      refine/pgc           [2, 1, 64, 64] pgc RefineCAM (GradCAM at block.relu_a and head, top class)
      refine/raw64/<layer> [2, 1, h, w]   each layer's raw map from the float64 model
      iscam/cam            [2, 1, 32, 32] torchcam ISCAM's CAM (first class; ReLU, normalised)
      iscam/raw64          [2, 1, 32, 32] its raw map sum_k w_k A_k from the float64 model
      iscam/bound_inputs   [2]            that run's max|score| and max|A|
      cam/torchcam         [2, 1, 16, 16] torchcam CAM at head (fc weights, first class, no ReLU)
      cam/raw64            [2, 1, 16, 16] sum_k W_ck A_k from the float64 model
      metrics/maps         [2, 64, 64]    pgc GradCAM's heatmaps (first class)
      metrics/confidence_change [2]       pgc's CamMultImageConfidenceChange on them (softmax)
      metrics/logit_scale  [1]            max |logit| of the float64 model on the photos
      sscam/cam, sscam/raw64, sscam/bound_inputs   as for iscam/, torchcam SSCAM (2 draws, std 2)
                                          with gradcam's own noise (seed 0) passed in
      sgcampp<N>/w64       [2, 8]         SmoothGrad-CAM++'s channel weights (std 0.3, first class,
                                          gradcam's noise, seed 0) from the float64 model: N = 1
                                          torchcam's SmoothGradCAMpp, N = 3 gradcam's formula
      sgcampp<N>/powers    [2, 3, 8, 1024] its mean G, G^2, G^3 over the draws (float64 model)
      sgcampp/a64          [2, 8, 32, 32] the unperturbed activations (float64 model)
      sgcampp3/torchcam_w64 [2, 8]        torchcam's weights of the 3 draws (ReLU of the last
                                          draw's gradient)
      fullgrad/pgc         [2, 64, 64]    pgc FullGrad (first class) on tiny_residual with each
                                          BatchNorm folded into its convolution (as the ONNX graph)
      fullgrad/pgc64       [2, 64, 64]    the same on a float64 copy
      fullgrad/terms       [2, T, 2]      each normalised channel term of the float64 run (3 input
                                          channels, then every bias's channels): max|x| max|dy/dx|
                                          or |b_k| max_layer|G|, and its range max - min
      fullgrad/sum_range   [2]            the range of the float64 sum before pgc's last scaling
      fullgrad/unfolded    [2, 64, 64]    pgc FullGrad on the unfolded model (stem's convolution
                                          bias and BatchNorm counted apart)
      road/morf80/imputed  [2, 3, 64, 64] pgc ROADMostRelevantFirst(80)'s imputed inputs, noise 0, on
                                          metrics/maps (softmax targets, first class)
      road/morf80, road/lerf20 [2]        its scores (and ROADLeastRelevantFirst(20)'s), noise 0
      road/combined        [2]            pgc ROADCombined (percentiles 10..90) with gradcam's noise
      road/gradient_l1     [2]            the largest l1 norm over the imputed inputs of the
                                          float64 model's softmax-probability input gradient
      arcc/masked/raw64, arcc/masked/raw_spread, arcc/masked/pgc   as for a layer of `make`, on the
                                          photos times metrics/maps (first class)
      arcc/<part>          [2]            pgc ARCC's parts (coherency: GradCAM at block.relu_a,
                                          logit targets; road: ROADCombined at 20..80, softmax
                                          targets, gradcam's noise; complexity) and its formula
      sgcampp<N>/bound_inputs [2]         max|G| over the draws, max|A|
    """
    import pytorch_grad_cam as pgc  # noqa: PLC0415
    from pytorch_grad_cam import base_cam, grad_cam_elementwise, hirescam, layer_cam  # noqa: PLC0415
    from pytorch_grad_cam.utils import svd_on_activations  # noqa: PLC0415

    original = svd_on_activations.get_2d_projection
    svd_log = []

    def signed_projection(batch):
        out = original(batch)
        for i, c in enumerate(batch):
            k = c.shape[0]
            flat = c.reshape(k, -1).T.astype(np.float64)
            centred = flat - flat.mean(axis=0)
            s = np.linalg.svd(centred, compute_uv=False)
            svd_log.append((float(s[0]), float(s[1]), float(np.abs(c).max())))
            if float((out[i].astype(np.float64).ravel() * flat.sum(axis=1)).sum()) < 0:
                out[i] = -out[i]
        return out

    for module in (base_cam, hirescam, layer_cam, grad_cam_elementwise):
        module.get_2d_projection = signed_projection

    x = np.concatenate([small_input(load_photo(REPO / "assets" / f"{p}.png")) for p in PHOTOS])
    with torch.no_grad():
        classes = np.argsort(-tiny(torch.from_numpy(x)).numpy(), axis=1)[:, :2].astype(np.int64)
    tensors = {"input": x, "classes": classes}
    model64 = copy.deepcopy(tiny).double().eval()
    methods = {"grad-cam": pgc.GradCAM, "grad-cam++": pgc.GradCAMPlusPlus,
               "xgrad-cam": pgc.XGradCAM, "hires-cam": pgc.HiResCAM,
               "element-wise-grad-cam": pgc.GradCAMElementWise, "layer-cam": pgc.LayerCAM,
               "score-cam": pgc.ScoreCAM, "ablation-cam": pgc.AblationCAM}

    def run(kind, model, xs, targets_of, aug):
        """pgc `kind` at block.relu_a for each image's first class; the raw maps it formed
        (`get_cam_image`'s outputs, in call order) and the heatmaps."""
        raws = []
        with kind(model=model, target_layers=[model.block.relu_a]) as cam:
            inner = cam.get_cam_image

            def recording(*args, **kwargs):
                out = inner(*args, **kwargs)
                raws.append(np.asarray(out, np.float64))
                return out
            cam.get_cam_image = recording
            heat = [cam(input_tensor=xs, targets=targets_of(0), eigen_smooth=not aug,
                        aug_smooth=aug)]
        return raws, np.stack(heat, 1).astype(np.float32)

    def targets_of(j):
        return [ClassifierOutputTarget(int(c)) for c in classes[:, j]]

    for name, kind in methods.items():
        svd_log.clear()
        raws32, heat = run(kind, tiny, torch.from_numpy(x), targets_of, False)
        svd_log.clear()
        raws, _ = run(kind, model64, torch.from_numpy(x).double(), targets_of, False)
        tensors[f"eigen/{name}/pgc"] = heat
        tensors[f"eigen/{name}/raw32"] = np.stack(raws32, 1).astype(np.float32)  # [2, 1, h, w]
        tensors[f"eigen/{name}/raw64"] = np.stack(raws, 1).astype(np.float32)
        svd = np.array(svd_log).reshape(2, 1, 3)  # [image, target, 3]
        tensors[f"eigen/{name}/svd"] = svd.astype(np.float32)
        print(f"   eigen {name}: s1/(s1 - s2) max {float((svd[..., 0] / (svd[..., 0] - svd[..., 1])).max()):.1f}")
    # FEM (gradient-free): pgc's heatmap, the float64 map and weights, and per channel how many
    # pixels lie within (2 + K) 1e-4 max|A| of the float64 threshold (a float32 network's
    # activations, within 1e-4 max|A| of float64's, move the threshold by at most (1 + K) times
    # that: such a pixel may count or not).
    _, heat = run(pgc.FEM, tiny, torch.from_numpy(x), targets_of, False)
    raws, _ = run(pgc.FEM, model64, torch.from_numpy(x).double(), targets_of, False)
    saved = {}
    handle = model64.block.relu_a.register_forward_hook(lambda m, i, o: saved.__setitem__("a", o))
    with torch.no_grad():
        model64(torch.from_numpy(x).double())
    handle.remove()
    a = saved["a"].numpy()  # [2, k, h, w]
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    th = flat.mean(2) + 2 * flat.std(2)
    tol = (2 + 2) * 1e-4 * np.abs(a).reshape(a.shape[0], -1).max(1)[:, None, None]
    tensors["fem/pgc"] = heat
    tensors["fem/raw64"] = np.stack(raws, 1).astype(np.float32)  # [2, 1, h, w]
    tensors["fem/w64"] = (flat > th[..., None]).mean(2).astype(np.float32)  # [2, k]
    tensors["fem/ambiguous"] = (np.abs(flat - th[..., None]) <= tol).sum(2).astype(np.float32)
    tensors["fem/max_a"] = np.abs(flat).max((1, 2)).astype(np.float32)  # [2]
    print(f"   fem: ambiguous pixels per channel {tensors['fem/ambiguous'].tolist()}")
    raws, heat = run(pgc.GradCAM, model64, torch.from_numpy(x).double(), targets_of, True)
    tensors["aug/raw64"] = np.stack(raws).astype(np.float32)  # [6, 2, h, w]
    _, heat = run(pgc.GradCAM, tiny, torch.from_numpy(x), targets_of, True)
    tensors["aug/pgc"] = heat[:, 0]  # [2, H, W]
    # Seg-Eigen-CAM (pgc's own sign rule, Eq. 13) and KPCA-CAM (scikit-learn's sign rule): pgc's
    # heatmap and raw map, the float64 model's raw map, and what the bounds need, logged from the
    # float64 run: Seg-Eigen-CAM's s_1, s_2 and max|C| (C = |G| A) and the float64 projection's
    # | |max| - |min| | (its sign is ambiguous within the bound of that); KPCA's lambda_1, lambda_2
    # of the centred kernel, the largest row norm R of the centred pixels x channels matrix and
    # max|A|.
    from pytorch_grad_cam import kpca_cam, seg_eigen_cam  # noqa: PLC0415
    from sklearn.metrics.pairwise import sigmoid_kernel  # noqa: PLC0415

    seg_original = seg_eigen_cam.get_2d_projection_with_sign_correction
    kpca_original = kpca_cam.get_2d_projection_kernel
    seg_log, kpca_log = [], []

    def seg_logged(batch):
        out = seg_original(batch)
        for i, c in enumerate(batch):
            flat = c.reshape(c.shape[0], -1).T.astype(np.float64)
            s = np.linalg.svd(flat - flat.mean(axis=0), compute_uv=False)
            margin = abs(abs(float(out[i].max())) - abs(float(out[i].min())))
            seg_log.append((float(s[0]), float(s[1]), float(np.abs(c).max()), margin))
        return out

    def kpca_logged(batch, kernel="sigmoid", gamma=None):
        kpca_log.append(np.array(batch))
        return kpca_original(batch, kernel, gamma)

    seg_eigen_cam.get_2d_projection_with_sign_correction = seg_logged
    kpca_cam.get_2d_projection_kernel = kpca_logged
    raws32, heat = run(pgc.SegEigenCAM, tiny, torch.from_numpy(x), targets_of, False)
    seg_log.clear()
    raws, _ = run(pgc.SegEigenCAM, model64, torch.from_numpy(x).double(), targets_of, False)
    tensors["seg-eigen-cam/pgc"] = heat  # [2, 1, H, W]
    tensors["seg-eigen-cam/raw32"] = np.stack(raws32, 1).astype(np.float32)  # [2, 1, h, w]
    tensors["seg-eigen-cam/raw64"] = np.stack(raws, 1).astype(np.float32)
    tensors["seg-eigen-cam/log"] = np.array(seg_log, np.float32)  # [2, 4]
    print(f"   seg-eigen-cam: {seg_log}")
    # KPCA-CAM: pgc's float32 run; the activations it saw (float32) and their kernel PCA in
    # float64 (dense eigensolver, scikit-learn's sign), with lambda_1, lambda_2 and |K~|_F.
    kpca_log.clear()
    raws32, heat = run(pgc.KPCA_CAM, tiny, torch.from_numpy(x), targets_of, False)
    a32 = kpca_log[0].astype(np.float32)  # [2, k, h, w]
    ref, stats = [], []
    for c in a32.astype(np.float64):
        flat = c.reshape(c.shape[0], -1).T
        centred = flat - flat.mean(axis=0)
        kern = sigmoid_kernel(centred, gamma=1.0 / c.shape[0], coef0=1)
        p = kern.shape[0]
        j = np.eye(p) - 1.0 / p
        centred_kernel = j @ kern @ j
        lam, vec = np.linalg.eigh(centred_kernel)
        y = vec[:, -1] * np.sqrt(max(lam[-1], 0.0))
        if abs(y.max()) < abs(y.min()):
            y = -y
        ref.append(y.reshape(c.shape[1:]))
        stats.append((lam[-1], lam[-2], np.linalg.norm(centred_kernel)))
    tensors["kpca-cam/pgc"] = heat  # [2, 1, H, W]
    tensors["kpca-cam/raw32"] = np.stack(raws32, 1).astype(np.float32)  # [2, 1, h, w]
    tensors["kpca-cam/a32"] = a32
    tensors["kpca-cam/ref64"] = np.stack(ref)[:, None].astype(np.float32)  # [2, 1, h, w]
    tensors["kpca-cam/log"] = np.array(stats, np.float32)  # [2, 3]
    print(f"   kpca-cam: {stats}; pgc float32 against float64: "
          f"{float(np.abs(tensors['kpca-cam/raw32'] - tensors['kpca-cam/ref64']).max()):.2e}")
    # Finer-CAM (pgc's FinerCAM over GradCAM, targets=None, alpha=1): its heatmap and the raw
    # map of the float64 model, and per image the margin of the compared set (the 4th nearest
    # logit's distance from the top one minus the 3rd's) in the float64 logits.
    def finer(model, xs):
        raws = []
        with pgc.FinerCAM(model=model, target_layers=[model.block.relu_a]) as cam:
            inner = cam.base_cam.get_cam_image

            def recording(*args, **kwargs):
                out = inner(*args, **kwargs)
                raws.append(np.asarray(out, np.float64))
                return out
            cam.base_cam.get_cam_image = recording
            heat = cam(input_tensor=xs, targets=None, alpha=1)
        return raws, heat

    _, heat = finer(tiny, torch.from_numpy(x))
    raws, _ = finer(model64, torch.from_numpy(x).double())
    with torch.no_grad():
        out = model64(torch.from_numpy(x).double()).numpy()
    d = np.sort(np.abs(out - out.max(axis=1, keepdims=True)), axis=1)
    tensors["finer/pgc"] = heat[:, None].astype(np.float32)  # [2, 1, H, W]
    tensors["finer/raw64"] = np.stack(raws, 1).astype(np.float32)  # [2, 1, h, w]
    tensors["finer/margin"] = (d[:, 4] - d[:, 3]).astype(np.float32)  # [2]
    print(f"   finer: compared-set margins {tensors['finer/margin'].tolist()}, "
          f"logit scale {float(np.abs(out).max()):.2f}")
    # RefineCAM (GradCAM as base_method; block.relu_a and head, each image's top class): pgc's
    # heatmap and each layer's raw map from the float64 model.
    def refine(model, xs):
        raws = []
        cam = pgc.RefineCAM(model=model, target_layers=[model.block.relu_a, model.head],
                            base_method=pgc.GradCAM)
        for base in cam.base_cam_per_layer:
            def recording(*args, inner=base.get_cam_image, **kwargs):
                out = inner(*args, **kwargs)
                raws.append(np.asarray(out, np.float64))
                return out
            base.get_cam_image = recording
        heat = cam(input_tensor=xs, targets=None)
        for base in cam.base_cam_per_layer:
            base.activations_and_grads.release()
        return raws, heat

    _, heat = refine(tiny, torch.from_numpy(x))
    raws, _ = refine(model64, torch.from_numpy(x).double())
    tensors["refine/pgc"] = heat[:, None].astype(np.float32)  # [2, 1, H, W]
    tensors["refine/raw64/block.relu_a"] = raws[0][:, None].astype(np.float32)  # [2, 1, 32, 32]
    tensors["refine/raw64/head"] = raws[1][:, None].astype(np.float32)  # [2, 1, 16, 16]
    # IS-CAM (torchcam's ISCAM, 10 samples, each image's first class): torchcam's CAM (at the
    # layer's resolution, ReLU and normalised), the float64 model's raw map sum_k w_k A_k, and
    # the largest |score| and |A| of that run (for the bound).
    from torchcam.methods import ISCAM  # noqa: PLC0415

    def torchcam_scores(key, make, noise_std=None):
        """torchcam's Score-CAM variant `make(model, input_shape)` on each image's first class:
        its CAM on the float32 model, the float64 model's raw map sum_k w_k A_k and that run's
        max|score| and max|A|, under `key/`. With `noise_std`, its noise is gradcam's own
        (`ss_cam_noise`, seed 0, times `noise_std`) instead of torch's random state."""
        def run(model, xs):
            log = {"score_max": 0.0, "sample": 0}
            with make(model, tuple(xs.shape[1:])) as ext:
                weights_of = ext._get_score_weights
                score_of = ext._score_input

                def ours(size):
                    n, k, h, w = size
                    noise = np.stack([ss_cam_noise(0, i, log["sample"], k * h * w)
                                      for i in range(n)]).reshape(size) * np.float32(noise_std)
                    log["sample"] += 1
                    return torch.from_numpy(noise.astype(np.float32)).to(xs.dtype)

                def logged_weights(*args, **kwargs):
                    out = weights_of(*args, **kwargs)
                    log["weights"] = out[0].clone()
                    return out

                def logged_score(*args, **kwargs):
                    out = score_of(*args, **kwargs)
                    log["score_max"] = max(log["score_max"], float(out.abs().max()))
                    return out
                if noise_std is not None:
                    ext._distrib = type("Ours", (), {"sample": staticmethod(ours)})()
                ext._get_score_weights = logged_weights
                ext._score_input = logged_score
                with torch.no_grad():
                    model(xs)
                activations = ext.hook_a[0].clone()
                cams = ext(class_idx=[int(c) for c in classes[:, 0]])
            return log, activations, cams[0]

        _, _, cam32 = run(tiny, torch.from_numpy(x))
        log, a64, _ = run(model64, torch.from_numpy(x).double())
        raw64 = torch.einsum("nk,nkhw->nhw", log["weights"], a64).numpy()
        tensors[f"{key}/cam"] = cam32.numpy()[:, None].astype(np.float32)  # [2, 1, 32, 32]
        tensors[f"{key}/raw64"] = raw64[:, None].astype(np.float32)  # [2, 1, 32, 32]
        tensors[f"{key}/bound_inputs"] = np.array(
            [log["score_max"], float(a64.abs().max())], np.float32)  # max|score|, max|A|
        print(f"   {key}: max|score| {log['score_max']:.2f}, max|A| {float(a64.abs().max()):.2f}")

    torchcam_scores("iscam", lambda model, shape: ISCAM(
        model, target_layer=model.block.relu_a, input_shape=shape))
    # torchcam's CAM (the classifier's weights at `head`, before the global average pool and
    # `fc`; no ReLU, normalised, at the layer's resolution) for each image's first class, and
    # the float64 model's CAM sum_k W_ck A_k before normalisation.
    from torchcam.methods import CAM  # noqa: PLC0415

    def classifier_cam(model, xs):
        with CAM(model, target_layer=model.head, fc_layer=model.fc,
                 input_shape=tuple(xs.shape[1:])) as ext:
            with torch.no_grad():
                model(xs)
            activations = ext.hook_a[0].clone()
            cams = ext(class_idx=[int(c) for c in classes[:, 0]])
        return activations, cams[0]

    _, cam32 = classifier_cam(tiny, torch.from_numpy(x))
    a64, _ = classifier_cam(model64, torch.from_numpy(x).double())
    w64 = model64.fc.weight.detach()[torch.from_numpy(classes[:, 0])]  # [2, k]
    tensors["cam/torchcam"] = cam32.numpy()[:, None].astype(np.float32)  # [2, 1, 16, 16]
    tensors["cam/raw64"] = torch.einsum("nk,nkhw->nhw", w64, a64).numpy()[:, None].astype(np.float32)
    # pgc's CamMultImageConfidenceChange (metrics/cam_mult_image.py) with softmax targets of
    # each image's first class, on pgc GradCAM's own heatmaps: o - y per image, and the maps.
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange  # noqa: PLC0415
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget  # noqa: PLC0415
    with pgc.GradCAM(model=tiny, target_layers=[tiny.block.relu_a]) as cam:
        maps = cam(input_tensor=torch.from_numpy(x), targets=targets_of(0))  # [2, H, W]
    softmax_targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes[:, 0]]
    change = CamMultImageConfidenceChange()(torch.from_numpy(x), maps, softmax_targets, tiny)
    with torch.no_grad():
        logits64 = model64(torch.from_numpy(x).double()).numpy()
    tensors["metrics/maps"] = maps.astype(np.float32)  # [2, H, W]
    tensors["metrics/confidence_change"] = np.asarray(change, np.float32).reshape(2)
    tensors["metrics/logit_scale"] = np.array([np.abs(logits64).max()], np.float32)
    print(f"   confidence change: {tensors['metrics/confidence_change'].tolist()}")
    # SS-CAM (torchcam's SSCAM, 2 draws of std 2, each image's first class) with gradcam's own
    # noise passed in (`ss_cam_noise`: SsCam::noise's SplitMix64 and Box-Muller, seed 0), so the
    # maps compare value for value: its CAM and the float64 model's raw map, as for IS-CAM.
    from torchcam.methods import SSCAM  # noqa: PLC0415

    torchcam_scores("sscam", lambda model, shape: SSCAM(
        model, target_layer=model.block.relu_a, num_samples=2, std=2.0, input_shape=shape),
        noise_std=2.0)
    smoothgrad_cam_pp(tiny, model64, x, classes, tensors)
    full_grad(tiny, x, classes, tensors)
    road_metrics(tiny, x, classes, tensors)
    deep_feature_factorization(tiny, x, tensors)
    shapley_cam(tiny, x, classes, tensors)
    seg_eigen_cam.get_2d_projection_with_sign_correction = seg_original
    kpca_cam.get_2d_projection_kernel = kpca_original
    for module in (base_cam, hirescam, layer_cam, grad_cam_elementwise):
        module.get_2d_projection = original
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              str(SMALL / "smoothing.safetensors"),
              metadata={"generator": "scripts/make_onnx_fixtures.py (make_smoothing)",
                        "methods": ",".join(methods)})
    print(f"   smoothing: classes {classes.tolist()}")


def make_sess(tiny):
    """pgc's SESS (base GradCAM at block.relu_a, each image's top class) on tiny_residual, for
    `onnx/tests/sess.rs`. Two settings over the same 18 patches per image (scales 64, 82, 100,
    118 of 4 at pgc's ratio 2/7; window 64, step 48, so windows overlap and border windows are
    moved back inside): 'default' (pgc's defaults otherwise: nothing filtered, mean fusion above
    theta 0, blurred, softmax scores), 'mean' (the same with pre_filter_ratio 0.25) and 'max'
    (nothing filtered, max fusion, no blur, logit scores). Every patch's Grad-CAM map is recorded inside pgc, so the test can hand
    gradcam's SESS pgc's own patch maps and check the composition (scores, filter, weights,
    paste, fusion, blur, normalisation) to float32 rounding. `sess.safetensors` holds

      classes         [2] int64     each image's top class (the input is smoothing.safetensors's)
      <s>/pgc         [2, 64, 64]   pgc SESS's output, s = default, mean, max
      <s>/range       [2]           the range of its fused map before the last min-max
      <s>/scores      [2, 18]       pgc's patch scores (softmax for mean, logits for max;
                                    clipped at 0), in patch order
      patch/raw       [36, 32, 32]  pgc's float32 Grad-CAM map of every patch (before the ReLU),
                                    image by image in patch order
      patch/means     [36, 8]       the channel means of the patch's activations (which patch)
      logit_scale     [1]           the largest |logit| over the patches (float32 model)
    """
    import pytorch_grad_cam as pgc  # noqa: PLC0415
    from pytorch_grad_cam.sess import SESS  # noqa: PLC0415

    x = np.concatenate([small_input(load_photo(REPO / "assets" / f"{p}.png")) for p in PHOTOS])
    xt = torch.from_numpy(x)
    with torch.no_grad():
        classes = tiny(xt).argmax(1).numpy().astype(np.int64)
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    settings = {
        "default": dict(),
        "mean": dict(pre_filter_ratio=0.25, pool="mean", smooth=True, use_softmax_scores=True),
        "max": dict(pre_filter_ratio=0.0, pool="max", smooth=False, use_softmax_scores=False),
    }
    tensors = {"classes": classes}  # the input: smoothing.safetensors's (the same photos)
    original_cam, original_scores = pgc.GradCAM.get_cam_image, SESS.get_scores
    maps, scores = [], []

    def logged_cam(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        cam = original_cam(self, input_tensor, target_layer, targets, activations, grads,
                           eigen_smooth)
        maps.extend(zip(activations.mean(axis=(2, 3)), cam))
        return cam

    def logged_scores(self, patches, target):
        out = original_scores(self, patches, target)
        scores.append(out)
        return out

    pgc.GradCAM.get_cam_image, SESS.get_scores = logged_cam, logged_scores
    try:
        for name, setting in settings.items():
            maps.clear()
            scores.clear()
            sess = SESS(model=tiny, target_layers=[tiny.block.relu_a], num_scales=4,
                        window_size=64, step_size=48, batch_size=8, **setting)
            heat = sess(input_tensor=xt, targets=targets)  # [2, H, W]
            tensors[f"{name}/pgc"] = heat.astype(np.float32)
            tensors[f"{name}/scores"] = np.stack(scores[:2]).astype(np.float32)
            records = list(maps)
            fused = [sess.forward_single_image(xt[i:i + 1], targets[i]) for i in range(2)]
            tensors[f"{name}/range"] = np.array([f.max() - f.min() for f in fused], np.float32)
        patches = [p for i in range(2) for p in sess.collect_patches(xt[i:i + 1], 64, 48)[0]]
    finally:
        pgc.GradCAM.get_cam_image, SESS.get_scores = original_cam, original_scores
    assert len(records) == 36, len(records)  # the 'max' run: every patch once
    # pgc explains each image's patches in the order of their scores (`np.argsort`, as there):
    # put them back in patch order.
    at = [i * 18 + int(p) for i in range(2) for p in np.argsort(tensors["max/scores"][i])]
    means, raws = np.zeros((36, 8), np.float32), np.zeros((36, 32, 32), np.float32)
    for (m, c), patch in zip(records, at):
        means[patch], raws[patch] = m, c
    tensors["patch/means"], tensors["patch/raw"] = means, raws
    with torch.no_grad():
        logits = tiny(torch.cat(patches))
    tensors["logit_scale"] = np.array([float(logits.abs().max())], np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              str(SMALL / "sess.safetensors"),
              metadata={"generator": "scripts/make_onnx_fixtures.py (make_sess)"})
    print(f"   sess: classes {classes.tolist()}, {len(patches)} patches, ranges "
          f"{tensors['mean/range'].tolist()} / {tensors['max/range'].tolist()}")


def unsupported_op():
    """A graph with an operator no importer knows, for `onnx/tests/errors.rs`."""
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper  # noqa: PLC0415
    node = helper.make_node("MadeUpOp", ["input"], ["mid"], name="/made_up/MadeUpOp")
    pool = helper.make_node("GlobalAveragePool", ["mid"], ["pooled"], name="/pool")
    flat = helper.make_node("Flatten", ["pooled"], ["logits"], name="/flatten", axis=1)
    graph = helper.make_graph(
        [node, pool, flat], "unsupported",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(SMALL / "unsupported_op.onnx"))


def export(model, x, path):
    torch.onnx.export(model, torch.from_numpy(x), str(path), opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def make(name, model, pgc_model, prep, layers, out_dir):
    """Export `model`, explain the photos with pgc on `pgc_model` at `layers` (gradcam name ->
    module of `pgc_model`), write `<name>.onnx` and `<name>.safetensors` into `out_dir`."""
    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    x = np.concatenate([prep(load_photo(REPO / "assets" / f"{p}.png")) for p in PHOTOS])
    export(model, x, out_dir / f"{name}.onnx")
    with torch.no_grad():
        logits = pgc_model(torch.from_numpy(x)).numpy()
        assert np.allclose(logits, model(torch.from_numpy(x)).numpy(), atol=1e-4), name
    classes = np.argsort(-logits, axis=1)[:, :2].astype(np.int64)
    tensors = {"input": x, "classes": classes}
    meta_pgc = {}
    H, W = x.shape[2:]
    for layer, module in layers.items():
        heat = pgc_heatmaps(pgc_model, module, x, classes)
        raw, spread = raw_grad_cam64(pgc_model, module, x, classes, f"{name} {layer}")
        tensors[f"{layer}/pgc"] = heat
        tensors[f"{layer}/raw64"] = raw.astype(np.float32)
        tensors[f"{layer}/raw_spread"] = spread.astype(np.float32)
        worst = max(float(np.abs(heat[i, j] - pgc_map_of(raw[i, j], (W, H))).max())
                    for i in range(2) for j in range(2))
        meta_pgc[layer] = worst
        print(f"   {name} {layer}: raw {list(raw.shape)}, |pgc - map(raw64)| max {worst:.2e}")
    names = {id(m): n for n, m in pgc_model.named_modules()}
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              str(out_dir / f"{name}.safetensors"), metadata={
                  "generator": f"scripts/make_onnx_fixtures.py, torch {torch.__version__}",
                  "layers": ",".join(layers),
                  "pgc_modules": json.dumps({k: names[id(m)] for k, m in layers.items()}),
                  "pgc_vs_raw64": json.dumps(meta_pgc)})
    print(f"{name}: classes {classes.tolist()}, {time.time() - t0:.0f} s", flush=True)


def main():
    torch.set_num_threads(2)
    large = "--large" in sys.argv[1:]
    if "--only-smoothing" in sys.argv[1:]:  # one oracle, without exporting the graphs again
        make_smoothing(randomise(TinyResidual(), 0))
        return
    if "--only-sess" in sys.argv[1:]:
        make_sess(randomise(TinyResidual(), 0))
        return

    tiny = randomise(TinyResidual(), 0)
    make("tiny_residual", tiny, tiny, small_input,
         {"head": tiny.head, "block.relu_a": tiny.block.relu_a}, SMALL)

    thin = randomise(thin_resnet101(), 1)
    thin_pgc = separate_relus(thin)
    make("thin_resnet101", thin, thin_pgc, small_input,
         {"layer4": thin_pgc.layer4, "/layer3/layer3.11/relu/Relu": thin_pgc.layer3[11].relu_a},
         SMALL)

    mobile = randomise(torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=10), 2)
    mobile_pgc = separate_relus_mobilenet(mobile)
    make("mobilenet_v2", mobile, mobile_pgc, small_input,
         {"features.18": mobile_pgc.features[18],
          "/features/features.13/conv/conv.0/conv.0.2/Clip": mobile_pgc.features[13].conv[0][2]},
         SMALL)

    # Graphs gradcam-onnx must refuse or adapt, for onnx/tests/errors.rs (no oracle).
    x = small_input(load_photo(REPO / "assets" / "chelsea.png"))
    torch.onnx.export(tiny, torch.from_numpy(x), str(SMALL / "tiny_static_batch.onnx"),
                      opset_version=17, dynamo=False, input_names=["input"], output_names=["logits"])
    export(nn.Sequential(tiny, nn.Softmax(dim=1)).eval(), x, SMALL / "tiny_softmax.onnx")
    export(Flat().eval(), x, SMALL / "flat.onnx")
    export(RowMixing(tiny).eval(), x, SMALL / "tiny_row_mixing.onnx")
    export(nn.Sequential(tiny.stem, tiny.block).eval(), x, SMALL / "tiny_segmentation.onnx")

    make_targets(tiny)
    make_guided(thin)
    make_smoothing(tiny)
    make_sess(tiny)
    unsupported_op()

    if large:
        from make_fixtures import load_resnet18  # noqa: PLC0415
        rn = load_resnet18(REPO / "tests" / "fixtures" / "resnet18_seed0.safetensors")
        rn_pgc = separate_relus(rn)
        make("resnet18", rn, rn_pgc, imagenet_input,
             {"layer4": rn_pgc.layer4, "/layer4/layer4.0/relu/Relu": rn_pgc.layer4[0].relu_a},
             LARGE)
        sq = models_pt.load_squeezenet(REPO / "assets" / "squeezenet1_1.safetensors")
        make("squeezenet", sq, sq, squeezenet_input, {"fire9": sq.fire9, "fire8": sq.fire8}, LARGE)
        lite = models_pt.load_lite0(REPO / "assets" / "efficientnet_lite0.safetensors")
        make("efficientnet_lite0", lite, lite, lite0_input,
             {"head": lite.head, "blocks.10.depthwise": lite.blocks[10].depthwise}, LARGE)


if __name__ == "__main__":
    main()
