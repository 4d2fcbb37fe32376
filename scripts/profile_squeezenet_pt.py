"""SqueezeNet 1.1's forward op by op in PyTorch (CPU, batch 8), the twin of
`cargo bench -p gradcam --profile dev --features flex,ndarray,wgpu --bench gradcam -- profile/`:
the same ops on random inputs of the same shapes, each call reducing its output to one sum.
Median ms of 5 calls after 2 warm-ups, one line per op as the bench prints it.

Usage: python scripts/profile_squeezenet_pt.py
"""
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import models_pt  # noqa: E402


def timed(call, samples=5, warmup=2):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main():
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    m = models_pt.load_squeezenet(HERE.parent / "assets" / "squeezenet1_1.safetensors")
    ops = []
    x = torch.randn(8, 3, 227, 227)
    ops.append(("conv1", lambda x=x: F.relu(m.conv1(x)).sum()))
    for side, c in [(113, 64), (56, 128), (27, 256)]:
        x = torch.randn(8, c, side, side)
        ops.append((f"pool{side}", lambda x=x: m.pool(x).sum()))
    fires = [("fire2", 64, 56), ("fire3", 128, 56), ("fire4", 128, 27), ("fire5", 256, 27),
             ("fire6", 256, 13), ("fire7", 384, 13), ("fire8", 384, 13), ("fire9", 512, 13)]
    for name, c, side in fires:
        fire = getattr(m, name)
        x = torch.randn(8, c, side, side)
        s = torch.randn(8, fire.squeeze.out_channels, side, side)
        e = fire.expand1x1.out_channels
        halves = (torch.randn(8, e, side, side), torch.randn(8, e, side, side))
        ops.append((f"{name}.squeeze", lambda f=fire, x=x: F.relu(f.squeeze(x)).sum()))
        ops.append((f"{name}.expand1x1", lambda f=fire, s=s: F.relu(f.expand1x1(s)).sum()))
        ops.append((f"{name}.expand3x3", lambda f=fire, s=s: F.relu(f.expand3x3(s)).sum()))
        ops.append((f"{name}.concat", lambda h=halves: torch.cat(h, 1).sum()))
    x = torch.randn(8, 512, 13, 13)
    ops.append(("conv10", lambda x=x: F.relu(m.conv10(x)).sum()))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| op | median ms | min ms |\n|---|---|---|")
    with torch.no_grad():
        for name, call in ops:
            median, least = timed(call)
            print(f"| profile/squeezenet/torch/8/{name} | {median:.2f} | {least:.2f} |", flush=True)


if __name__ == "__main__":
    main()
