"""Public API re-exports and __version__; no logic.

Names are imported on first use (PEP 562), so ``deltaprop --help`` starts without NumPy.
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
    "optim": "deltaprop.optim",
    "DeltapropError": "deltaprop.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from deltaprop import optim
    from deltaprop.errors import DeltapropError
    from deltaprop.io import load
    from deltaprop.model import Model
    from deltaprop.network import Gradients, Network


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if name == "optim" else getattr(module, name)
    globals()[name] = value
    return value


__all__ = ["DeltapropError", "Gradients", "Model", "Network", "__version__", "load", "optim"]
