"""docs/img/perf_throughput.png from a bench_mlp.py JSON: samples/s vs batch size per system.

    python benchmarks/plot_perf.py benchmarks/results.json docs/img/perf_throughput.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(src: str, dst: str) -> None:
    rows = json.load(open(src))["rows"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for system in dict.fromkeys(r["system"] for r in rows):
        pts = sorted((r["batch_size"], r["samples_per_s"]) for r in rows if r["system"] == system)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=system)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("training samples / s (median epoch)")
    ax.set_title("MLP 784-256-128-10, Fashion-MNIST, SGD momentum")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
