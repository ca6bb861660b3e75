"""Scaling of data-parallel training: the same data and network on 1, 2 and 4 MPI ranks.

    python benchmarks/bench_distributed.py                 # launches mpirun -n 1, 2, 4
    python benchmarks/bench_distributed.py --ranks 1,2 --epochs 3 --samples 8192

Trains a 784-256-128-10 ReLU/softmax network (float32, Adam, global batch 128) on synthetic
MNIST-sized data for a few epochs, after one warm-up epoch, and prints a markdown table of
seconds per epoch, samples per second, speed-up and bytes all-reduced per step. BLAS is
pinned to one thread per rank, so the comparison is ranks, not threads. Timings on a shared
machine vary; run it a few times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [784, 256, 128, 10]


def worker(samples: int, epochs: int, batch: int) -> None:
    from mpi4py import MPI

    import deltaprop as dp
    from deltaprop import distributed

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)
    X = rng.random((samples, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], size=samples)
    net = dp.Network(SIZES, dtype="float32", seed=0)
    opt = dp.optim.Adam(lr=1e-3)
    distributed.fit(net, X, y, epochs=1, batch_size=batch, optimizer=opt, verbose=0, comm=comm)
    comm.Barrier()
    started = time.perf_counter()
    distributed.fit(net, X, y, epochs=1 + epochs, initial_epoch=1, batch_size=batch,
                    optimizer=opt, verbose=0, comm=comm)
    comm.Barrier()
    seconds = (time.perf_counter() - started) / epochs
    step_bytes = distributed.AllreduceBackprop(net, batch, comm).bytes_per_step
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.Get_size(), "seconds_per_epoch": seconds,
                          "samples_per_second": samples / seconds, "bytes_per_step": step_bytes,
                          "parameters": net.n_parameters()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="1,2,4")
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.samples, args.epochs, args.batch)
        return
    mpirun = shutil.which("mpirun", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if mpirun is None:
        sys.exit("mpirun not found: pip install 'deltaprop[mpi]'")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    rows = []
    for n in (int(r) for r in args.ranks.split(",")):
        cmd = [mpirun, "-n", str(n), "--oversubscribe"]
        if os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        cmd += [sys.executable, __file__, "--worker", "--samples", str(args.samples),
                "--epochs", str(args.epochs), "--batch", str(args.batch)]
        job = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(job.stdout.strip().splitlines()[-1]))
    base = rows[0]["seconds_per_epoch"]
    print(f"{SIZES}, {rows[0]['parameters']} parameters, float32, global batch {args.batch}, "
          f"{args.samples} samples, {os.cpu_count()} cores\n")
    print("| ranks | s / epoch | samples / s | speed-up | bytes all-reduced / step |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['ranks']} | {r['seconds_per_epoch']:.2f} | {r['samples_per_second']:.0f} "
              f"| {base / r['seconds_per_epoch']:.2f} | {r['bytes_per_step']:,} |")


if __name__ == "__main__":
    main()
