"""Loading Fashion-MNIST's 133 MB CSV: deltaprop's loader against np.loadtxt, pandas, pyarrow.

    PYTHONPATH=src python benchmarks/bench_csv.py [--runs 5] [--csv PATH]

Writes the CSV Kaggle ships (``label,pixel1,…,pixel784``, 60000 rows of integers) from
Debian's Fashion-MNIST IDX files, unless ``--csv`` names one that exists, then loads it
``--runs`` times with each reader, each load in a fresh child process, the readers taking
turns. A child reports the load's wall time and CPU time (imports excluded; on a busy
machine the CPU time is the steadier figure) and its peak resident set (VmHWM, the whole
process). The readers:

- ``deltaprop``: ``deltaprop.data.load(path, target="label")`` — the whole loader: parse,
  class labels, the stratified train/test split;
- ``loadtxt``: ``np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)``;
- ``loadtxt-lines``: the same parser fed an open file, which it reads line by line through
  Python (as a reader that hands NumPy chunks of lines would);
- ``pandas``: ``pd.read_csv(path, dtype=np.float32).to_numpy()`` (its C engine);
- ``pyarrow``: ``pyarrow.csv.read_csv`` with float32 columns, copied into one array.

Targets (issue 16): deltaprop's median time ≤ 1.5 × loadtxt's, and its peak memory
≤ 2 × the float32 data (60000 × 785 × 4 bytes = 188 MB), at most 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")
FASHION = Path("/usr/share/datasets/fashion-mnist")
READERS = ("deltaprop", "loadtxt", "loadtxt-lines", "pandas", "pyarrow")

CHILD = r"""
import json, sys, time
import numpy as np
reader, path = sys.argv[1], sys.argv[2]

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

if reader == "deltaprop":
    from deltaprop import data
    load = lambda: data.load(path, target="label").X_train
elif reader == "loadtxt":
    load = lambda: np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
elif reader == "loadtxt-lines":
    def load():
        with open(path) as f:
            f.readline()
            return np.loadtxt(f, delimiter=",", dtype=np.float32)
elif reader == "pandas":
    import pandas as pd
    load = lambda: pd.read_csv(path, dtype=np.float32).to_numpy()
else:
    import pyarrow as pa
    import pyarrow.csv as pc

    def load():
        with open(path) as f:
            names = f.readline().strip().split(",")
        options = pc.ConvertOptions(column_types={name: pa.float32() for name in names})
        table = pc.read_csv(path, convert_options=options)
        out = np.empty((table.num_rows, table.num_columns), np.float32)
        for j, column in enumerate(table.columns):
            out[:, j] = column.to_numpy()
        return out
before = status("VmRSS")
start, cpu = time.perf_counter(), time.process_time()
X = load()
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak": status("VmHWM"), "before": before,
                  "shape": list(X.shape)}))
"""


def write_csv(path: Path) -> None:
    """Kaggle's Fashion-MNIST training CSV, from Debian's IDX files."""
    sys.path.insert(0, SRC)
    from deltaprop.data.idx import read_idx

    images = read_idx(FASHION / "train-images-idx3-ubyte.gz").reshape(60000, 784)
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")
    header = "label," + ",".join(f"pixel{k}" for k in range(1, 785))
    partial = path.with_suffix(".partial")
    with open(partial, "w") as f:
        np.savetxt(f, np.column_stack([labels, images]), fmt="%d", delimiter=",",
                   header=header, comments="")
    partial.replace(path)


def machine() -> list[str]:
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("pandas", "pyarrow"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"{name} not installed")
    blas = "; ".join(f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
                     f"{p.get('num_threads')} threads" for p in threadpool_info())
    return [f"CPU: {cpu}, {os.cpu_count()} cores; load average "
            + " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "BLAS: " + (blas or "none found"), ", ".join(versions)]


def run(reader: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, reader, str(path)],
                          env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode:
        raise SystemExit(f"{reader} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="loads per reader (at least 3)")
    ap.add_argument("--csv", type=Path,
                    default=Path(tempfile.gettempdir()) / "deltaprop-bench" / "fashion_train.csv")
    ap.add_argument("--readers", default=",".join(READERS))
    args = ap.parse_args()
    readers = [r for r in args.readers.split(",") if r]
    available = []
    for reader in readers:
        if reader in ("pandas", "pyarrow"):
            try:
                __import__(reader)
            except ImportError:
                print(f"({reader} is not installed: skipped)")
                continue
        available.append(reader)
    if not args.csv.exists():
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        write_csv(args.csv)
    size = args.csv.stat().st_size
    print(f"{args.csv}: {size / 1e6:.0f} MB; {max(3, args.runs)} loads per reader, each in a "
          "fresh process, readers taking turns")
    for line in machine():
        print(line)
    results: dict[str, list[dict]] = {r: [] for r in available}
    for k in range(max(3, args.runs)):
        turn = available[k % len(available):] + available[: k % len(available)]
        for reader in turn:
            results[reader].append(run(reader, args.csv))
    data_bytes = 60000 * 785 * 4
    base = statistics.median(r["seconds"] for r in results["loadtxt"]) if "loadtxt" in results \
        else None
    print()
    print("| reader | time median (min–max) s | × loadtxt | CPU time median s |"
          " peak RSS median (min–max) MB | growth during the load MB |")
    print("|---|---|---|---|---|---|")
    for reader, runs in results.items():
        seconds = [r["seconds"] for r in runs]
        peaks = [r["peak"] / 1e6 for r in runs]
        growth = statistics.median((r["peak"] - r["before"]) / 1e6 for r in runs)
        ratio = f"{statistics.median(seconds) / base:.2f}" if base else "–"
        cpu = statistics.median(r["cpu"] for r in runs)
        print(f"| {reader} | {statistics.median(seconds):.2f} ({min(seconds):.2f}–"
              f"{max(seconds):.2f}) | {ratio} | {cpu:.2f} | {statistics.median(peaks):.0f} "
              f"({min(peaks):.0f}–{max(peaks):.0f}) | {growth:.0f} |")
    if "deltaprop" in results and base:
        ours = statistics.median(r["seconds"] for r in results["deltaprop"])
        peak = statistics.median(r["peak"] for r in results["deltaprop"])
        limit = min(2 * data_bytes, 400e6)
        print(f"\ntime: deltaprop / loadtxt = {ours / base:.2f} (target ≤ 1.5): "
              f"{'met' if ours <= 1.5 * base else 'NOT met'}")
        print(f"memory: deltaprop's peak {peak / 1e6:.0f} MB, limit min(2 × {data_bytes / 1e6:.0f}"
              f" MB, 400 MB) = {limit / 1e6:.0f} MB: {'met' if peak <= limit else 'NOT met'}")
    print("load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
