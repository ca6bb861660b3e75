"""Multi-host MPI on one machine: ranks on simulated hosts (network namespaces), over TCP.

test_distributed.py runs every rank on this host, where Open MPI uses shared memory. Here
each rank runs on its own simulated host (tests/netns.py): started by ``mpirun`` through an
ssh stand-in, with a fresh environment, talking TCP over a veth pair (two hosts) or a bridge
(three). The tests check what docs/distributed.md promises across machines: the same result
as one process, resume from a checkpoint, and a rank killed on another host ending the job.

Root only; skipped with the reason elsewhere (not root, no ``ip``, no mpirun, or namespaces
cannot be made). ``.ci/run`` sets DELTAPROP_REQUIRE_MULTIHOST=1, which turns those skips into
failures there. The last test closes the hosts and checks that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import netns
from deltaprop import io
from mpi_support import (
    REL_TOL,
    SCRIPTS,
    assert_equals_one_process,
    job_env,
    one_process_references,
)

# From SIGKILL on host 1 to mpirun's exit. The other rank learns of it when its TCP
# connection closes, at once (observed 0.28 s, three runs, 2-core machine); the bound leaves
# room for a loaded machine, and a job that misses it is hanging.
KILL_BOUND = 30.0
TRAIN = ["-m", "deltaprop", "train", "--distributed", "--epochs", "2", "--quiet"]


def _unavailable(reason: str) -> None:
    if os.environ.get("DELTAPROP_REQUIRE_MULTIHOST"):
        pytest.fail(f"multi-host tests required (DELTAPROP_REQUIRE_MULTIHOST) but {reason}")
    pytest.skip(reason)


def _open_hosts(n: int, folder: Path) -> netns.Hosts:
    reason = netns.skip_reason()
    if reason is not None:
        _unavailable(reason)
    netns.sweep()  # namespaces of earlier runs that were killed before their clean-up
    try:
        return netns.Hosts(n, folder).open()
    except netns.Unavailable as e:
        _unavailable(str(e))
        raise  # not reached: _unavailable skips or fails


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory):
    hosts = _open_hosts(2, tmp_path_factory.mktemp("two_hosts"))
    try:
        yield hosts
    finally:  # also after a failure or Ctrl-C: pytest tears fixtures down in both cases
        hosts.close()


@pytest.fixture(scope="module")
def three_hosts(tmp_path_factory: pytest.TempPathFactory):
    hosts = _open_hosts(3, tmp_path_factory.mktemp("three_hosts"))
    try:
        yield hosts
    finally:
        hosts.close()


@pytest.fixture(scope="module")
def cli_runs(two_hosts: netns.Hosts, tmp_path_factory: pytest.TempPathFactory):
    """The command-line jobs several tests share (each costs seconds)."""
    d = tmp_path_factory.mktemp("cli")
    runs: dict[str, object] = {"dir": d}
    # digits, float64, 2 epochs: across the two hosts and on one process.
    digits = ["--dtype", "float64", "--checkpoint-every", "1"]
    runs["hosts"] = two_hosts.mpirun(*TRAIN, *digits, "--out", "hosts.safetensors", cwd=d)
    runs["one"] = subprocess.run(
        [sys.executable, *[a for a in TRAIN if a != "--distributed"], *digits,
         "--out", "one.safetensors"],
        cwd=d, env=job_env(), capture_output=True, text=True, timeout=netns.JOB_TIMEOUT,
    )
    # Rank 1, on host 1, killed (SIGKILL) before its 6th step, in epoch 2 of iris (101
    # training rows: 4 batches of 32 per epoch). Rank 0 wrote the epoch-1 checkpoint before
    # it entered step 5's Allreduce, which rank 1 completed: the checkpoint is complete.
    stamp = d / "kill.json"
    killer = [str(SCRIPTS / "train_and_fail.py"), "kill", "5", "--", *TRAIN[2:]]
    runs["killed"] = two_hosts.mpirun(*killer, "--data", "iris", "--checkpoint-every", "1",
                                      "--out", "cut.safetensors", cwd=d,
                                      env={"KILL_STAMP": str(stamp)})
    runs["killed_end"] = time.time()
    runs["kill"] = json.loads(stamp.read_text()) if stamp.exists() else None
    runs["processes_after_kill"] = _processes_after(two_hosts)
    # The same iris run, not interrupted: what the resumed run must equal bit for bit.
    runs["iris"] = two_hosts.mpirun(*TRAIN, "--data", "iris", "--checkpoint-every", "1",
                                    "--out", "iris.safetensors", cwd=d)
    return runs


def _processes_after(hosts: netns.Hosts, grace: float = 5.0) -> list[int]:
    """The processes still in the hosts' namespaces ``grace`` seconds after a job ended."""
    deadline = time.monotonic() + grace
    while (left := hosts.processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _relative_difference(a: Path, b: Path) -> float:
    """The largest parameter difference of two model files, relative to the parameter."""
    worst = 0.0
    for (key, p), (_, q) in zip(io.load(a).parameters(), io.load(b).parameters(), strict=True):
        assert p.dtype == q.dtype == np.float64, key
        worst = max(worst, float(np.abs(p - q).max() / np.abs(q).max()))
    return worst


# ----------------------------------------------------------------------------- the jobs
@pytest.mark.mpi
def test_cli_train_distributed_across_hosts_equals_one_process(cli_runs, two_hosts) -> None:
    job, one, d = cli_runs["hosts"], cli_runs["one"], cli_runs["dir"]
    assert job.returncode == 0, job.stderr[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    assert netns.address(1) in two_hosts.launches()  # host 1's daemon came through the agent
    lines = [line for line in job.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, job.stdout  # rank 0 alone reports
    # the same test loss and accuracy, printed to 4 digits, as one process
    assert lines[0].split(";")[0] == one.stdout.split(";")[0]
    rel = _relative_difference(d / "hosts.safetensors", d / "one.safetensors")
    assert rel <= REL_TOL, f"relative difference {rel:.2e} across two hosts"
    assert io.load(d / "hosts.safetensors").meta["epochs"] == 2


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_distributed_fit_across_hosts_equals_one_process(n: int, request, tmp_path) -> None:
    hosts: netns.Hosts = request.getfixturevalue({2: "two_hosts", 3: "three_hosts"}[n])
    out = tmp_path / "result.npz"
    job = hosts.mpirun(str(SCRIPTS / "fit_problem.py"), str(out), cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-3000:]
    result = np.load(out)
    # rank k ran on host k: each in its own namespace, none in this machine's
    assert [int(i) for i in result["netns"]] == hosts.inodes
    assert_equals_one_process(result, one_process_references(), n)


@pytest.mark.mpi
def test_killing_the_rank_on_the_second_host_ends_the_job(cli_runs, two_hosts) -> None:
    job, kill, d = cli_runs["killed"], cli_runs["kill"], cli_runs["dir"]
    assert kill is not None, job.stderr[-3000:]  # rank 1 reached the step and killed itself
    assert kill["netns"] == two_hosts.inodes[1]  # … on host 1
    took = cli_runs["killed_end"] - kill["time"]
    assert took <= KILL_BOUND, f"the job ended {took:.1f} s after the kill"
    assert job.returncode != 0
    assert cli_runs["processes_after_kill"] == []  # no rank or daemon left on either host
    assert not (d / "cut.safetensors").exists()
    _, state, optimizer = io.load_checkpoint(d / "cut.ckpt.safetensors")
    assert state["epoch"] == 1
    assert optimizer.name == "adam"
    assert len(state["history"]["loss"]) == 1


@pytest.mark.mpi
def test_resume_across_hosts_equals_the_uninterrupted_run_bitwise(cli_runs, two_hosts) -> None:
    d = cli_runs["dir"]
    assert cli_runs["iris"].returncode == 0, cli_runs["iris"].stderr[-3000:]
    job = two_hosts.mpirun("-m", "deltaprop", "train", "--distributed", "--json", "--resume",
                           "cut.ckpt.safetensors", "--out", "resumed.safetensors", cwd=d)
    assert job.returncode == 0, job.stderr[-3000:]
    summary = json.loads(job.stdout)  # one JSON object: rank 0 alone printed
    assert summary["history"]["epoch"] == [0, 1]  # epoch 1 from the checkpoint, then 2
    uninterrupted = io.load(d / "iris.safetensors")
    resumed = io.load(d / "resumed.safetensors")
    for (key, p), (_, q) in zip(uninterrupted.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(q, p, err_msg=key)


# ----------------------------------------------------------------------------- clean-up
def test_hosts_are_removed_when_interrupted(tmp_path: Path) -> None:
    hosts = _open_hosts(2, tmp_path)
    with pytest.raises(KeyboardInterrupt), hosts:
        sleeper = subprocess.Popen(["ip", "netns", "exec", hosts.names[1], "sleep", "600"])
        deadline = time.monotonic() + 10
        while not hosts.processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hosts.processes() == [sleeper.pid]
        raise KeyboardInterrupt  # as if Ctrl-C
    assert sleeper.wait(timeout=10) == -9  # killed by the clean-up, not left running
    assert hosts.leftovers() == []


def test_sweep_removes_namespaces_of_ended_runs_only(two_hosts) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()  # its pid now names a process that no longer runs
    stale = f"{netns.PREFIX}-{ended.pid}-abcdef-0"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        assert stale in netns.sweep()
        assert stale not in netns.namespaces()
        assert set(two_hosts.names) <= set(netns.namespaces())  # this run's are kept
    finally:
        if stale in netns.namespaces():
            subprocess.run(["ip", "netns", "delete", stale], check=True)


def test_nothing_is_left_behind(two_hosts, three_hosts) -> None:
    """Last in this file: closes the hosts the tests above used, as their teardown would."""
    two_hosts.close()
    three_hosts.close()
    assert netns.leftovers() == []
