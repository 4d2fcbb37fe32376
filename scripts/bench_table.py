#!/usr/bin/env python3
"""Ours vs pytorch-grad-cam, one table: medians over several runs, and the ratio per row.

Inputs: the stdout of one or more runs of our bench (`cargo bench ... --bench gradcam`), and the
stdout (JSON lines) of one or more runs of `scripts/bench_pgc.py`. Each figure in the table is
the median over the runs of each run's median.

  scripts/bench_table.py --ours out/ours-*.txt --pgc out/pgc-*.json [--backend flex]

Standard library only.
"""

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict

NAMES = {"squeezenet": "SqueezeNet 1.1", "lite0": "EfficientNet-Lite0", "resnet50": "ResNet-50"}
ROW = re.compile(r"^\| (grad_cam|forward)/(\w+)/(\w+)/(\d+) \| ([\d.]+) \|")


def ours(paths):
    """-> {(what, model, backend, batch): [median ms per run]}"""
    runs = defaultdict(list)
    for path in paths:
        with open(path) as f:
            for line in f:
                m = ROW.match(line)
                if m:
                    what, model, backend, batch, ms = m.groups()
                    runs[(what, model, backend, int(batch))].append(float(ms))
    return runs


def pgc(paths):
    """-> {(mode, model, batch): [median ms per run]}, plus the header fields of the last row."""
    runs, info = defaultdict(list), {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                row = json.loads(line)
                runs[(row["mode"], row["model"], row["batch"])].append(row["median_ms"])
                info = {k: row.get(k) for k in ("torch", "threads", "cpu", "device", "grad_cam")}
    return runs, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", nargs="+", required=True, help="our bench's stdout, one file per run")
    ap.add_argument("--pgc", nargs="+", required=True, help="bench_pgc.py's stdout, one file per run")
    ap.add_argument("--backend", default="flex", help="our backend to compare (default flex)")
    a = ap.parse_args()

    o = ours(a.ours)
    p, info = pgc(a.pgc)
    med = statistics.median
    print(f"pgc side: {info}; runs: ours {len(a.ours)}, pgc {len(a.pgc)}; medians of the runs' medians")
    print()
    print(f"| model | batch | ours {a.backend} Grad-CAM | ours {a.backend} forward | PyTorch forward "
          "| pgc GradCAM | ours / pgc | ours / PyTorch fwd |")
    print("|---|---|---|---|---|---|---|---|")
    shown = 0
    for model, name in NAMES.items():
        for batch in sorted({k[3] for k in o if k[1] == model and k[2] == a.backend}):
            gc = o.get(("grad_cam", model, a.backend, batch))
            fwd = o.get(("forward", model, a.backend, batch))
            pf = p.get(("forward", model, batch))
            pg = p.get(("gradcam", model, batch))
            if not (gc and pg):
                continue
            cell = lambda v: f"{med(v):.1f}" if v else "-"
            ratio_fwd = f"{med(gc) / med(pf):.2f}" if pf else "-"
            print(f"| {name} | {batch} | {cell(gc)} | {cell(fwd)} | {cell(pf)} | {cell(pg)} "
                  f"| {med(gc) / med(pg):.2f} | {ratio_fwd} |")
            shown += 1
    if not shown:
        sys.exit(f"no row has both our `grad_cam/.../{a.backend}/N` and a pgc `gradcam` figure")


if __name__ == "__main__":
    main()
