"""Public API re-exports and __version__; no logic.

Names — and the public submodules, so ``dp.datasets.load("iris")`` works after a bare
``import deltaprop as dp`` — are imported on first use (PEP 562), so ``deltaprop --help``
starts without NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the module that defines it
_EXPORTS = {
    "Network": "deltaprop.network",
    "Gradients": "deltaprop.network",
    "Model": "deltaprop.model",
    "load": "deltaprop.io",
    "DeltapropError": "deltaprop.errors",
}

# public submodules, reachable as attributes: dp.datasets, dp.optim, …
_SUBMODULES = (
    "data",
    "datasets",
    "distributed",
    "explain",
    "gradcheck",
    "optim",
    "schedules",
    "sklearn",
    "training",
)

if TYPE_CHECKING:  # pragma: no cover
    from deltaprop import (
        data,
        datasets,
        distributed,
        explain,
        gradcheck,
        optim,
        schedules,
        sklearn,
        training,
    )
    from deltaprop.errors import DeltapropError
    from deltaprop.io import load
    from deltaprop.model import Model
    from deltaprop.network import Gradients, Network


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"deltaprop.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


__all__ = [
    "DeltapropError",
    "Gradients",
    "Model",
    "Network",
    "__version__",
    "data",
    "datasets",
    "distributed",
    "explain",
    "gradcheck",
    "load",
    "optim",
    "schedules",
    "sklearn",
    "training",
]
