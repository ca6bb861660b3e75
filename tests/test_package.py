"""The package itself: public names and submodules as attributes, imported on first use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
SUBMODULES = ["data", "datasets", "distributed", "explain", "gradcheck", "optim", "schedules",
              "sklearn", "training"]


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)


def test_submodules_are_attributes_after_a_bare_import(tmp_path: Path) -> None:
    """`import deltaprop as dp; dp.datasets.load(...)` works (issue 16: AttributeError), and
    the bare import itself still loads no NumPy."""
    code = (
        "import sys, importlib\n"
        "import deltaprop as dp\n"
        "print('NUMPY', 'numpy' in sys.modules)\n"
        "print('IRIS', dp.datasets.load('iris').n_features)\n"
        f"for name in {SUBMODULES!r}:\n"
        "    assert getattr(dp, name) is importlib.import_module('deltaprop.' + name), name\n"
        f"assert set({SUBMODULES!r}) <= set(dir(dp))\n"
        "print('OK')\n"
    )
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "NUMPY False" in proc.stdout and "IRIS 4" in proc.stdout and "OK" in proc.stdout


def test_unknown_attribute_is_an_attribute_error() -> None:
    import deltaprop as dp

    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        dp.nonsense  # noqa: B018
    assert dp.Network is __import__("deltaprop.network", fromlist=["Network"]).Network
