"""Training on a memory-mapped file: the memory it holds, and what a chunked shuffle costs.

    PYTHONPATH=src python benchmarks/bench_out_of_core.py [--rows 96000] [--seeds 3]

1. Memory. Writes a ``.npy`` of ``--rows`` × 784 float32 (96000 rows: 301 MB) and its
   labels; shows how much of the file reading one value through a memory map maps into the
   process (a page-cache folio: 2 MiB on Linux 6.x with ext4); then in fresh child
   processes loads it (memory-mapped), fits a standard
   Scaler in one streaming pass and trains one epoch of 784-16-10 (batches of 512) through
   ``input_transform`` — with ``shuffle="chunks"`` (a 32 MiB window read from the file),
   ``False`` (the stored order, read the same way) and ``True`` (a full permutation,
   gathered through the map). Each child reports its peak RSS (VmHWM) and its RSS before it
   opened the file.
2. Accuracy. Fashion-MNIST (Debian's package), pixels / 255, 784-128-10 ReLU/softmax, Adam
   (lr 1e-3), batches of 128, ``--epochs`` epochs, ``--seeds`` seeds: test accuracy with a
   full shuffle against the chunked shuffle — the default ``ChunkShuffle()`` (256 KiB chunks
   of 83 float32 rows, 128 chunks per 32 MiB window: 10624 rows), fewer and larger chunks
   (1 MiB: 32 chunks of 334 rows per window) and a small window (4 MiB: 16 chunks, 1328
   rows) — on the training rows in the order Fashion-MNIST ships them (already mixed) and
   sorted by class (the worst case for any shuffle that keeps runs of rows together).
   The arrays are in memory: the chunked order is the same for a memory map (the tests
   check that training on either gives identical weights).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)

from deltaprop import data, optim, training  # noqa: E402
from deltaprop.network import Network  # noqa: E402
from deltaprop.streaming import ChunkShuffle  # noqa: E402

CHILD = r"""
import json, sys, time
from deltaprop import data, training
from deltaprop.network import Network
from deltaprop.preprocessing import Scaler

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

before = status("VmRSS")
ds = data.load(sys.argv[1], target=sys.argv[2])
scaler = Scaler("standard").fit(ds.X_train)
after_scaler = status("VmHWM")
net = Network([784, 16, 10], seed=0)
shuffle = {"chunks": "chunks", "none": False, "full": True}[sys.argv[3]]
start = time.perf_counter()
training.fit(net, ds.X_train, ds.y_train, epochs=1, batch_size=512, verbose=0,
             shuffle=shuffle, input_transform=scaler.transform_into)
print(json.dumps({"before": before, "after_scaler": after_scaler, "peak": status("VmHWM"),
                  "seconds": time.perf_counter() - start}))
"""


def mapped_kib(path: Path) -> int:
    """KiB of ``path`` mapped into this process (the Rss of its maps in /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            fields = line.split()
            if fields and "-" in fields[0] and ":" not in fields[0]:  # a map's first line
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(fields[1])
    return total


def touch_one_row(path: Path) -> list[int]:
    """KiB newly mapped by reading one value of a row, at three places of the file."""
    X = np.load(path, mmap_mode="r")
    grown = []
    for row in (len(X) // 5, len(X) // 2, 4 * len(X) // 5):
        before = mapped_kib(path)
        float(X[row, 0])
        grown.append(mapped_kib(path) - before)
    return grown


def memory(rows: int, directory: Path) -> None:
    X = np.lib.format.open_memmap(directory / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(rows, 784))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, rows)
    centres = rng.standard_normal((10, 784)).astype(np.float32)
    for start in range(0, rows, 8192):
        part = slice(start, min(rows, start + 8192))
        X[part] = centres[y[part]] + rng.standard_normal((len(y[part]), 784), dtype=np.float32)
    X.flush()
    del X
    np.save(directory / "y.npy", y)
    size = os.path.getsize(directory / "X.npy")
    print(f"\nreading one value of a 3136-byte row through the map maps "
          f"{', '.join(str(k) for k in touch_one_row(directory / 'X.npy'))} KiB of the file")
    print(f"\n{directory / 'X.npy'}: {size / 2**20:.0f} MiB ({rows} × 784 float32); one epoch")
    print("| shuffle | RSS before loading MiB | peak after the scaler's pass MiB | peak MiB |"
          " growth MiB | growth / file | epoch s |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("chunks", "none", "full"):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(directory / "X.npy"), str(directory / "y.npy"),
             mode], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True,
            timeout=1800, check=True,
        )
        r = json.loads(proc.stdout)
        growth = r["peak"] - r["before"]
        print(f"| {mode} | {r['before'] / 2**20:.0f} | {r['after_scaler'] / 2**20:.0f} | "
              f"{r['peak'] / 2**20:.0f} | {growth / 2**20:.0f} | {growth / size:.0%} | "
              f"{r['seconds']:.1f} |")


def accuracy(epochs: int, seeds: int) -> None:
    fashion = data.load("fashion-mnist")
    X = (fashion.X_train / np.float32(255.0)).astype(np.float32)
    X_test = (fashion.X_test / np.float32(255.0)).astype(np.float32)
    by_class = np.argsort(fashion.y_train, kind="stable")
    orders = {"as shipped": np.arange(len(X)), "sorted by class": by_class}
    shuffles = {
        "full (True)": True,
        "chunks (default: 256 KiB, 32 MiB windows)": ChunkShuffle(),
        "1 MiB chunks, 32 MiB windows": ChunkShuffle(chunk_bytes=1 << 20),
        "256 KiB chunks, 4 MiB windows": ChunkShuffle(window_bytes=4 << 20),
    }
    print(f"\nFashion-MNIST, 784-128-10, Adam lr 1e-3, batch 128, {epochs} epochs, "
          f"seeds 0..{seeds - 1}: test accuracy, mean (min–max)")
    print("| training rows | " + " | ".join(shuffles) + " |")
    print("|---|" + "---|" * len(shuffles))
    for order_name, order in orders.items():
        cells = []
        for shuffle in shuffles.values():
            scores = []
            for seed in range(seeds):
                net = Network([784, 128, 10], seed=seed)
                training.fit(net, X[order], fashion.y_train[order], epochs=epochs,
                             batch_size=128, optimizer=optim.Adam(lr=1e-3), shuffle=shuffle,
                             verbose=0)
                scores.append(net.evaluate(X_test, fashion.y_test)["accuracy"])
            cells.append(f"{statistics.mean(scores):.4f} ({min(scores):.4f}–{max(scores):.4f})")
        print(f"| {order_name} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=96000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--part", choices=("memory", "accuracy", "both"), default="both")
    args = ap.parse_args()
    print("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if args.part in ("memory", "both"):
        with tempfile.TemporaryDirectory() as directory:
            memory(args.rows, Path(directory))
    if args.part in ("accuracy", "both"):
        accuracy(args.epochs, args.seeds)
    print("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
