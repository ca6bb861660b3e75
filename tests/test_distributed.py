"""Tests for deltaprop.distributed: MPI data-parallel gradient sums.

The MPI tests launch ``mpirun -n N --oversubscribe`` as a subprocess (never MPI inside the
pytest process) on the helper scripts in ``tests/mpi_scripts``; they are skipped, with the
reason, when mpi4py or mpirun is missing (``pip install -e ".[test,mpi]"`` installs both).
BLAS is pinned to one thread per rank so that oversubscribed ranks do not fight over cores.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import distributed, io, training
from mpi_support import (
    JOB_TIMEOUT,
    SCRIPTS,
    assert_equals_one_process,
    fit_problem,
    job_env,
    mpi_skip_reason,
    mpirun_path,
    one_process_references,
)

mpi = pytest.mark.skipif(mpi_skip_reason() is not None, reason=mpi_skip_reason() or "")


def mpirun(n: int, *args: str, cwd: Path, timeout: float = JOB_TIMEOUT):
    """Run ``mpirun -n n python args…``; the CompletedProcess (text output)."""
    cmd = [mpirun_path(), "-n", str(n), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return subprocess.run(
        [*cmd, sys.executable, *args], cwd=cwd, env=job_env(), capture_output=True, text=True,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- no MPI needed
@pytest.mark.parametrize("m", [1, 2, 3, 7, 10, 32, 33])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_share_covers_the_batch_contiguously_with_counts_within_one(m: int, size: int) -> None:
    bounds = [distributed.share(m, size, k) for k in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    counts = [hi - lo for lo, hi in bounds]
    assert max(counts) - min(counts) <= 1
    assert counts == sorted(counts, reverse=True)  # the first m mod size ranks take one more


def test_share_grows_with_the_batch() -> None:
    # A rank's workspace is sized for the largest batch; every smaller batch must fit.
    for size in (2, 3, 5):
        for k in range(size):
            counts = [np.subtract(*distributed.share(m, size, k)[::-1]) for m in range(40)]
            assert counts == sorted(counts)


def test_backprop_parameter_replaces_backprop_into_exactly() -> None:
    # training.fit's `backprop` hook, given net.backprop_into itself, changes nothing: it
    # takes the plain path (backprop, then optimizer.step), as fused=False does.
    a, _ = fit_problem.run(fit_problem.PROBLEMS[0], training.fit, fused=False)
    net = dp.Network([6, 9, 7, 3], activation="tanh", output="softmax",
                     loss="cross_entropy", dtype="float64", seed=3)
    X, y = fit_problem.data(53, 6, 3, 3)
    calls = []

    def spy(ws, r):  # type: ignore[no-untyped-def]
        calls.append(ws.m)
        return net.backprop_into(ws, r)

    training.fit(net, X, y, epochs=3, batch_size=10, validation_split=0.1, verbose=0,
                 optimizer=dp.optim.SGD(lr=0.1, momentum=0.9), backprop=spy)
    assert calls and calls[-1] == 7  # ceil(0.1 × 53) = 6 held out, 47 rows: 4 × 10, then 7
    for (key, p), (_, q) in zip(a.parameters(), net.parameters(), strict=True):
        assert np.array_equal(p, q), key


def test_mpi_unavailable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py → ImportError
    with pytest.raises(distributed.MPIUnavailable, match=r"pip install 'deltaprop\[mpi\]'"):
        distributed.world()


# ----------------------------------------------------------------------------- under mpirun
@pytest.fixture(scope="module")
def references() -> dict[str, tuple[dict[str, np.ndarray], training.History]]:
    return one_process_references()


@mpi
@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_n_processes_equal_one_process_and_ranks_stay_identical(
    n: int, references, tmp_path: Path
) -> None:
    out = tmp_path / "result.npz"
    job = mpirun(n, str(SCRIPTS / "fit_problem.py"), str(out), cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-3000:]
    assert_equals_one_process(np.load(out), references, n)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The CLI jobs the end-to-end and fault tests share (each mpirun costs seconds)."""
    if mpi_skip_reason() is not None:
        pytest.skip(mpi_skip_reason() or "")
    d = tmp_path_factory.mktemp("cli")
    train = ["-m", "deltaprop", "train", "--distributed", "--epochs", "2", "--quiet"]
    runs: dict[str, object] = {"dir": d}
    # Uninterrupted: the command of the issue, with a checkpoint every epoch.
    runs["full"] = mpirun(2, *train, "--checkpoint-every", "1", "--out", "full.safetensors",
                          cwd=d)
    # Rank 1 killed (SIGKILL) before its 6th step, in epoch 2 of iris (101 training rows: 4
    # batches of 32 per epoch). Rank 0 wrote the epoch-1 checkpoint before it entered step
    # 5's Allreduce, which rank 1 completed: the checkpoint is complete.
    killer = [str(SCRIPTS / "train_and_fail.py"), "kill", "5", "--", *train[2:]]
    runs["killed"] = mpirun(2, *killer, "--data", "iris", "--checkpoint-every", "1",
                            "--out", "cut.safetensors", cwd=d)
    # The same iris run, not interrupted: what a resumed run must equal bit for bit.
    runs["iris"] = mpirun(2, *train, "--data", "iris", "--checkpoint-every", "1",
                          "--out", "iris.safetensors", cwd=d)
    return runs


@mpi
@pytest.mark.mpi
def test_cli_train_distributed_end_to_end(cli_runs) -> None:
    job = cli_runs["full"]
    d = cli_runs["dir"]
    assert job.returncode == 0, job.stderr[-3000:]
    lines = [line for line in job.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "test accuracy" in lines[0], job.stdout  # rank 0 alone reports
    accuracy = float(lines[0].split("test accuracy ")[1].split(";")[0])
    assert accuracy > 0.7  # digits, 2 epochs of Adam: ~0.85 on one process
    net = io.load(d / "full.safetensors")
    assert net.meta["epochs"] == 2
    assert not list(d.glob(".*.tmp"))  # no rank left a half-written file


@mpi
@pytest.mark.mpi
def test_killed_rank_ends_the_job_and_leaves_a_valid_checkpoint(cli_runs) -> None:
    job = cli_runs["killed"]  # mpirun returned: it did not hang (bounded by JOB_TIMEOUT)
    d = cli_runs["dir"]
    assert job.returncode != 0
    message = job.stdout + job.stderr
    assert "signal 9" in message or "Killed" in message, message[-3000:]
    assert not (d / "cut.safetensors").exists()
    _, state, optimizer = io.load_checkpoint(d / "cut.ckpt.safetensors")
    assert state["epoch"] == 1
    assert optimizer.name == "adam"
    assert len(state["history"]["loss"]) == 1


@mpi
@pytest.mark.mpi
def test_resume_under_mpi_continues_from_the_checkpoint(cli_runs) -> None:
    d = cli_runs["dir"]
    job = mpirun(2, "-m", "deltaprop", "train", "--distributed", "--json", "--resume",
                 "cut.ckpt.safetensors", "--out", "resumed.safetensors", cwd=d)
    assert job.returncode == 0, job.stderr[-3000:]
    summary = json.loads(job.stdout)  # one JSON object: rank 0 alone printed
    _, state, _ = io.load_checkpoint(d / "cut.ckpt.safetensors")
    assert summary["history"]["epoch"] == [0, 1]  # epoch 1 from the checkpoint, then 2
    assert summary["history"]["loss"][0] == state["history"]["loss"][0]
    cut = io.load(d / "cut.ckpt.safetensors")
    resumed = io.load(d / "resumed.safetensors")
    assert resumed.meta["epochs"] == 2
    assert any(not np.array_equal(p, q) for (_, p), (_, q) in
               zip(cut.parameters(), resumed.parameters(), strict=True))  # epoch 2 was trained
    assert cli_runs["iris"].returncode == 0, cli_runs["iris"].stderr[-3000:]
    uninterrupted = io.load(d / "iris.safetensors")
    for (_, p), (_, q) in zip(uninterrupted.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(q, p)  # resumed under MPI = never interrupted, bitwise


@mpi
@pytest.mark.mpi
def test_an_error_on_one_rank_aborts_every_rank(tmp_path: Path) -> None:
    # Without MPI_Abort the healthy rank would wait in Allreduce forever (timeout → failure).
    job = mpirun(2, str(SCRIPTS / "train_and_fail.py"), "raise", "3", "--", "train",
                 "--distributed", "--data", "iris", "--epochs", "2", "--quiet",
                 "--out", "m.safetensors", cwd=tmp_path)
    assert job.returncode != 0
    assert "error: injected failure on rank 1" in job.stderr
    assert "MPI_ABORT" in job.stderr or "abort" in job.stderr.lower()
    assert not (tmp_path / "m.safetensors").exists()
