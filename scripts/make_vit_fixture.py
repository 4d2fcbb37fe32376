#!/usr/bin/env python3
"""A tiny ViT and pytorch-grad-cam's maps of it, for the Rust test of `Probe::tokens`.

Writes tests/fixtures/tiny_vit.safetensors, the weights, in Burn's layout (Linear weights [in, out], LayerNorm gamma/beta), keys as the Rust
  test's `TinyVit` fields: patch.{weight,bias}, cls, pos, blocks.<i>.{norm1,norm2}.{gamma,beta},
  blocks.<i>.{q,k,v,proj,fc1,fc2}.{weight,bias}, norm.{gamma,beta}, head.{weight,bias}; and
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
"""
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


if __name__ == "__main__":
    main()
