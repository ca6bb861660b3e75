"""The IDX reader and writer under their first home's name: see :mod:`deltaprop.data.idx`."""

from __future__ import annotations

from deltaprop.data.idx import IDX_DTYPES, read_idx, write_idx

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]
