#!/usr/bin/env python3
"""A tiny ViT and pytorch-grad-cam's maps of it, for the Rust test of `Probe::tokens`.

Writes tests/fixtures/tiny_vit.safetensors, the weights, in Burn's layout (Linear weights [in, out], LayerNorm gamma/beta), keys as the Rust
  test's `TinyVit` fields: patch.{weight,bias}, cls, pos, blocks.<i>.{norm1,norm2}.{gamma,beta},
  blocks.<i>.{qkv,proj,fc1,fc2}.{weight,bias} (qkv: q, k and v concatenated along the output, as
  torchvision's in_proj), norm.{gamma,beta}, head.{weight,bias}; and
tests/fixtures/tiny_vit_oracle.safetensors:

  input          [1, 3, 32, 32]   chelsea.png, PIL bilinear to 32 x 32, /255, ImageNet mean/std
  logits         [1, 10]          float32 network
  class          [1]              the top-1 class (int64)
  ref/activations, ref/gradients  [1, 32, 4, 4]   float64 network, at blocks.1.norm1's output
                                  after pgc's reshape_transform (class token dropped)
  pgc/<method>   [32, 32]         pytorch-grad-cam 1.5.7's output on the float64 network, with
                                  reshape_transform, target_layers=[blocks[-1].norm1], the top-1
                                  class; methods GradCAM and LayerCAM
  pgc32/grad-cam [32, 32]         the same GradCAM on the float32 network

The network (random weights, torch.manual_seed(0); weights scaled so that attention is not
uniform): 8 x 8 patches of a 32 x 32 image (a 4 x 4 grid) embedded to 32 dims, a class token and
learned positions, 2 pre-norm blocks (2-head attention, GELU MLP of 64), a final LayerNorm and a
10-class head on the class token. Usage: make_vit_fixture.py

`make_vit_fixture.py --legrad` writes tests/fixtures/tiny_vit_legrad.safetensors from the committed
weights and input (the files above, unchanged): torchcam 0.5.0's LeGrad on a twin of the network
whose blocks hold `self_attention`, a batch-first `nn.MultiheadAttention` (`in_proj` = q; k; v,
`out_proj` = proj), as torchcam requires, in float64, with `score_projection` = head(norm(mean of
the tokens)):

  twin/logits                [1, 10]   the twin's logits (float64), to check the twin
  classes                    [2]       the top-1 and top-2 classes (int64)
  ref/<c>/grad<l>            [1, 2, 17, 17]  d s^l / d A^l for class rank c (0, 1), block l (0, 1)
  torchcam/<c>/raw           [1, 4, 4] LeGrad over both blocks, normalized=False
  torchcam/<c>/cam           [1, 4, 4] the same, normalised (torchcam's default)
  torchcam/<c>/last          [1, 4, 4] LeGrad of the last block only, normalised
  wrong/<c>/no-relu          [1, 4, 4] the gradients averaged without their ReLU, normalised
  wrong/<c>/prefix-kept      [1, 4, 4] the first 16 keys (class token in, last patch out), normalised

`make_vit_fixture.py --torchvision` writes tests/fixtures/tiny_torchvision_vit.pth, the state_dict
of a torchvision `VisionTransformer` of the same shape (seed 0; the class token, positions, q/k
and head scaled up as above, since torchvision starts the head at zero), and
tests/fixtures/tiny_torchvision_vit_legrad.safetensors, for `models::load_torchvision_vit`:

  logits                     [1, 10]   its float64 logits on the input of tiny_vit_oracle
  class                      [1]       the top class (int64)
  ref/grad<l>                [1, 2, 17, 17]  d s^l / d A^l, float64, block l (0, 1)
  torchcam/raw, torchcam/cam [1, 4, 4] torchcam's LeGrad with its built-in projection for
                                       torchvision ViTs, every block: raw and normalised
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.numpy import save_file

from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

REPO = Path(__file__).resolve().parent.parent
DIM, HEADS, MLP, CLASSES, SIDE, PATCH = 32, 2, 64, 10, 32, 8
GRID = SIDE // PATCH


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.q, self.k, self.v, self.proj = (nn.Linear(DIM, DIM) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(DIM, MLP), nn.Linear(MLP, DIM)

    def forward(self, x):
        y = self.norm1(x)
        n, t, d = y.shape
        split = lambda z: z.reshape(n, t, HEADS, d // HEADS).transpose(1, 2)  # [n, heads, t, hd]
        q, k, v = split(self.q(y)), split(self.k(y)), split(self.v(y))
        attn = torch.softmax(q @ k.transpose(-1, -2) * (d // HEADS) ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TinyVit(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, PATCH, stride=PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, 1 + GRID * GRID, DIM) * 0.5)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)  # [n, 16, DIM]
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def reshape_transform(tensor, height=GRID, width=GRID):
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def burn_weights(model):
    out = {}
    for key, value in model.state_dict().items():
        v = value.detach().float().numpy()
        parts = key.split(".")
        module = model.get_submodule(".".join(parts[:-1])) if len(parts) > 1 else model
        if isinstance(module, nn.LayerNorm):
            key = ".".join(parts[:-1] + [{"weight": "gamma", "bias": "beta"}[parts[-1]]])
        elif isinstance(module, nn.Linear) and parts[-1] == "weight":
            v = v.T
        out[key] = np.ascontiguousarray(v, dtype=np.float32)
    for i in range(len(model.blocks)):  # q, k, v as one [in, 3 out] projection
        for p, axis in (("weight", 1), ("bias", 0)):
            out[f"blocks.{i}.qkv.{p}"] = np.ascontiguousarray(
                np.concatenate([out.pop(f"blocks.{i}.{x}.{p}") for x in "qkv"], axis=axis))
    return out


def main():
    weights_out = REPO / "tests" / "fixtures" / "tiny_vit.safetensors"
    out = REPO / "tests" / "fixtures" / "tiny_vit_oracle.safetensors"
    torch.manual_seed(0)
    model = TinyVit().eval()
    with torch.no_grad():  # sharper attention and a livelier head than the default init
        for block in model.blocks:
            for lin in (block.q, block.k):
                lin.weight.mul_(3.0)
        model.head.weight.mul_(4.0)
    img = Image.open(REPO / "assets" / "chelsea.png").convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    x = torch.from_numpy(((x - mean) / std).transpose(2, 0, 1)[None].copy())

    logits = model(x)
    cls = int(logits.argmax())
    save_file(burn_weights(model), str(weights_out))
    tensors = {}
    tensors["input"] = x.numpy()
    tensors["logits"] = logits.detach().numpy()
    tensors["class"] = np.array([cls], dtype=np.int64)

    model64 = TinyVit().double().eval()
    model64.load_state_dict(model.state_dict())
    x64 = x.double()
    layer64 = model64.blocks[-1].norm1
    store = {}
    def keep(module, inputs, output):
        store["a"] = output
        output.register_hook(lambda grad: store.__setitem__("g", grad))

    handle = layer64.register_forward_hook(keep)
    model64(x64)[0, cls].backward()
    handle.remove()
    tensors["ref/activations"] = reshape_transform(store["a"]).detach().numpy().astype(np.float64)
    tensors["ref/gradients"] = reshape_transform(store["g"]).detach().numpy().astype(np.float64)

    targets = [ClassifierOutputTarget(cls)]
    for name, method in [("grad-cam", GradCAM), ("layer-cam", LayerCAM)]:
        cam = method(model=model64, target_layers=[model64.blocks[-1].norm1], reshape_transform=reshape_transform)
        tensors[f"pgc/{name}"] = np.float32(cam(input_tensor=x64, targets=targets)[0])
    cam = GradCAM(model=model, target_layers=[model.blocks[-1].norm1], reshape_transform=reshape_transform)
    tensors["pgc32/grad-cam"] = np.float32(cam(input_tensor=x, targets=targets)[0])
    d = np.abs(tensors["pgc32/grad-cam"] - tensors["pgc/grad-cam"]).max()
    save_file(tensors, str(out), metadata={"pgc32_vs_pgc64_grad_cam": f"{d:.3e}", "class": str(cls)})
    print(f"wrote {out}: class {cls}, logits {logits.detach().numpy().round(2)}, pgc f32 vs f64 {d:.2e}")


class MhaBlock(nn.Module):
    """Block with its attention in a batch-first nn.MultiheadAttention, as torchcam's LeGrad needs."""

    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.self_attention = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(DIM, MLP), nn.Linear(MLP, DIM)

    def forward(self, x):
        y = self.norm1(x)
        a, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + a
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TwinVit(TinyVit):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([MhaBlock(), MhaBlock()])


def twin_from_burn(weights):
    """The twin with the committed Burn-layout weights (Linear [in, out], LayerNorm gamma/beta)."""
    w = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in weights.items()}
    model = TwinVit().double().eval()
    state = {}
    for key, value in w.items():
        parts = key.split(".")
        if parts[-1] in ("gamma", "beta"):
            key = ".".join(parts[:-1] + [{"gamma": "weight", "beta": "bias"}[parts[-1]]])
        elif len(parts) > 1 and parts[-2] in ("qkv", "proj", "fc1", "fc2", "head") and parts[-1] == "weight":
            value = value.T
        state[key] = value
    for i in range(2):
        b = f"blocks.{i}"
        state[f"{b}.self_attention.in_proj_weight"] = state.pop(f"{b}.qkv.weight")
        state[f"{b}.self_attention.in_proj_bias"] = state.pop(f"{b}.qkv.bias")
        state[f"{b}.self_attention.out_proj.weight"] = state.pop(f"{b}.proj.weight")
        state[f"{b}.self_attention.out_proj.bias"] = state.pop(f"{b}.proj.bias")
    model.load_state_dict({k: v.contiguous() for k, v in state.items()})
    return model


def torchcam_legrad(model, blocks, x, cls, project=None):
    """torchcam's LeGrad of `blocks` for class `cls` (its built-in projection unless `project`):
    (d s^l / d A^l of each block, the raw map, the normalised map), as numpy arrays."""
    from torchcam.methods import LeGrad

    options = {} if project is None else {"score_projection": project}
    with LeGrad(model, blocks, **options) as cam:
        model(x)
        grads = [
            torch.autograd.grad(cam.hook_a[i][:, cls].sum(), cam.hook_attn[i], retain_graph=True)[0]
            for i in range(len(blocks))
        ]
        raw = cam(cls, normalized=False)[0]
    with LeGrad(model, blocks, **options) as cam:  # a fresh forward: the graph above is spent
        model(x)
        normalised = cam(cls)[0]
    return [g.detach().numpy() for g in grads], raw.detach().numpy(), normalised.detach().numpy()


def legrad():
    from safetensors.numpy import load_file

    weights = load_file(str(REPO / "tests" / "fixtures" / "tiny_vit.safetensors"))
    oracle = load_file(str(REPO / "tests" / "fixtures" / "tiny_vit_oracle.safetensors"))
    model = twin_from_burn(weights)
    x = torch.from_numpy(oracle["input"]).double()
    project = lambda tokens: model.head(model.norm(tokens.mean(dim=1)))
    logits = model(x)
    d = np.abs(logits.detach().numpy() - oracle["logits"]).max()
    assert d < 1e-4, f"the twin's logits are {d} from the network's"
    classes = [int(c) for c in logits[0].argsort(descending=True)[:2]]
    assert classes[0] == int(oracle["class"][0])
    tensors = {"twin/logits": logits.detach().numpy(), "classes": np.array(classes, dtype=np.int64)}
    blocks = [model.blocks[0], model.blocks[1]]

    def normalise(cam):
        cam = cam - cam.amin(dim=(-2, -1), keepdim=True)
        return cam / (cam.amax(dim=(-2, -1), keepdim=True) + 1e-8)

    for rank, cls in enumerate(classes):
        grads, raw, cam = torchcam_legrad(model, blocks, x, cls, project)
        tensors[f"torchcam/{rank}/raw"], tensors[f"torchcam/{rank}/cam"] = raw[None], cam[None]
        for i, g in enumerate(grads):
            tensors[f"ref/{rank}/grad{i}"] = g
        tensors[f"torchcam/{rank}/last"] = torchcam_legrad(model, [model.blocks[1]], x, cls, project)[2][None]
        grads = [torch.from_numpy(g) for g in grads]
        mean = lambda g, keys: g.mean(dim=(1, 2))[:, keys].reshape(1, GRID, GRID)
        tensors[f"wrong/{rank}/no-relu"] = normalise(sum(mean(g, slice(1, None)) for g in grads) / 2).numpy()
        tensors[f"wrong/{rank}/prefix-kept"] = normalise(
            sum(mean(g.relu(), slice(0, GRID * GRID)) for g in grads) / 2
        ).numpy()
    out = REPO / "tests" / "fixtures" / "tiny_vit_legrad.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out),
              metadata={"twin_vs_network_logits": f"{d:.3e}", "classes": str(classes)})
    print(f"wrote {out}: classes {classes}, twin vs network {d:.2e}")


def torchvision_vit():
    from safetensors.numpy import load_file
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(image_size=SIDE, patch_size=PATCH, num_layers=2, num_heads=HEADS,
                              hidden_dim=DIM, mlp_dim=MLP, num_classes=CLASSES).eval()
    with torch.no_grad():
        model.class_token.copy_(torch.randn(1, 1, DIM) * 0.5)
        model.encoder.pos_embedding.copy_(torch.randn(1, 1 + GRID * GRID, DIM) * 0.5)
        for layer in model.encoder.layers:
            layer.self_attention.in_proj_weight[: 2 * DIM].mul_(3.0)
        model.heads.head.weight.copy_(torch.randn(CLASSES, DIM) * 0.5)
        model.heads.head.bias.copy_(torch.randn(CLASSES) * 0.1)
    pth = REPO / "tests" / "fixtures" / "tiny_torchvision_vit.pth"
    torch.save(model.state_dict(), str(pth))

    oracle = load_file(str(REPO / "tests" / "fixtures" / "tiny_vit_oracle.safetensors"))
    model64 = model.double()
    x = torch.from_numpy(oracle["input"]).double()
    logits = model64(x)
    cls = int(logits.argmax())
    tensors = {"logits": logits.detach().numpy(), "class": np.array([cls], dtype=np.int64)}
    grads, tensors["torchcam/raw"], tensors["torchcam/cam"] = torchcam_legrad(
        model64, list(model64.encoder.layers), x, cls)
    for i, g in enumerate(grads):
        tensors[f"ref/grad{i}"] = g
    out = REPO / "tests" / "fixtures" / "tiny_torchvision_vit_legrad.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out), metadata={"class": str(cls)})
    print(f"wrote {pth} and {out}: class {cls}, logits {logits.detach().numpy().round(2)}")


if __name__ == "__main__":
    if "--legrad" in sys.argv[1:]:
        legrad()
    elif "--torchvision" in sys.argv[1:]:
        torchvision_vit()
    else:
        main()
