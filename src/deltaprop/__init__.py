"""Public API re-exports and __version__; no logic."""

from deltaprop import optim
from deltaprop.network import Gradients, Network

__version__ = "0.1.0"


def load(path, **kwargs):  # noqa: ANN001, ANN201 - thin re-export, typed in io.load
    """Read a model file written by ``Network.save``; see :func:`deltaprop.io.load`."""
    from deltaprop import io

    return io.load(path, **kwargs)


__all__ = ["Gradients", "Network", "__version__", "load", "optim"]
