"""scikit-learn's own MLP test suite, run against deltaprop's estimators.

A peer's check of a drop-in (the way scikit-learn-intelex and cuML check theirs): the
``sklearn/neural_network/tests/test_mlp.py`` of the *installed* scikit-learn, copied into a
temporary directory with one change — its import line takes ``MLPClassifier`` and
``MLPRegressor`` from ``deltaprop.sklearn`` — and run with ``pytest -p sklearn.conftest``
(scikit-learn's conftest provides the ``global_random_seed`` fixture), warnings as errors.
Nothing is fetched.

Deselected: the tests that call a private method or attribute of scikit-learn's estimator
(:data:`PRIVATE`, with the name each one reads). The script checks that each of them still
exists and still reads that name, so a change in scikit-learn's file shows up here.
docs/sklearn.md lists them with the reason.

    python tests/sklearn_suite.py [pytest options…]      # .ci/run runs it

Exit status: pytest's.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
REPLACEMENT = "from deltaprop.sklearn import MLPClassifier, MLPRegressor"

#: test name → the private name it reads (scikit-learn's internals, not its interface).
PRIVATE = {
    "test_gradient": "_loss_grad_lbfgs",  # scikit-learn's packed-parameter loss function
    "test_learning_rate_warmstart": "_optimizer.learning_rate",  # its optimizer's attribute
    "test_adaptive_learning_rate": "_optimizer.learning_rate",
}


def installed_suite() -> Path:
    """The installed scikit-learn's test_mlp.py."""
    spec = importlib.util.find_spec("sklearn.neural_network")
    if spec is None or spec.origin is None:
        raise SystemExit("error: scikit-learn is not installed")
    path = Path(spec.origin).parent / "tests" / "test_mlp.py"
    if not path.is_file():
        raise SystemExit(f"error: {path} is missing (scikit-learn installed without its tests?)")
    return path


def rewrite(source: str) -> str:
    """The suite with its one import line changed; an error if that line is not there once."""
    lines = source.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.rstrip("\n") == IMPORT]
    if len(hits) != 1:
        raise SystemExit(f"error: expected the line {IMPORT!r} once in test_mlp.py; "
                         f"found it {len(hits)} times")
    lines[hits[0]] = REPLACEMENT + "\n"
    return "".join(lines)


def check_private(source: str) -> None:
    """Each deselected test exists and reads the private name it is deselected for."""
    functions = {node.name: ast.get_source_segment(source, node)
                 for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    for name, private in PRIVATE.items():
        if name not in functions:
            raise SystemExit(f"error: {name} is no longer in test_mlp.py; update PRIVATE")
        if not re.search(re.escape("." + private), functions[name] or ""):
            raise SystemExit(f"error: {name} no longer reads {private}; run it (update PRIVATE)")


def main(argv: list[str]) -> int:
    import sklearn

    source = installed_suite().read_text(encoding="utf-8")
    check_private(source)
    with tempfile.TemporaryDirectory(prefix="sklearn-suite-") as tmp:
        suite = Path(tmp) / "test_mlp.py"
        suite.write_text(rewrite(source), encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", suite.name,
            "-p", "sklearn.conftest",  # scikit-learn's fixtures (global_random_seed)
            "-p", "no:cacheprovider",
            "-c", os.devnull,  # none of deltaprop's pytest settings, no rootdir config
            "--rootdir", tmp,
            "-W", "error",  # stricter than scikit-learn's own run
            "-q",
            *(f"--deselect=test_mlp.py::{name}" for name in PRIVATE),
            *argv,
        ]
        print(f"scikit-learn {sklearn.__version__}: {installed_suite()}")
        print(f"deselected (private names): {', '.join(PRIVATE)}", flush=True)
        started = time.perf_counter()
        status = subprocess.call(command, cwd=tmp)
        print(f"test_mlp.py took {time.perf_counter() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
