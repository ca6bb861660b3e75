"""Rows of arrays larger than memory: blocks, an epoch's row order, and releasing read pages.

A memory map (``np.load(path, mmap_mode="r")``, ``np.memmap``) reads its file lazily, page by
page, through the operating system's page cache. The cache itself belongs to the kernel, but
every page the process has *touched* stays mapped into it and counts in its resident set
(RSS) until it is unmapped — so reading a 4 GB map once, front to back, ends with a 4 GB
RSS. This module bounds that: after a block of rows has been read, :func:`release` tells
the kernel (``madvise(MADV_DONTNEED)``) that the process no longer needs those pages. They
leave the resident set; the data stays in the page cache (and on disk), so a later read is
a cheap re-fault, not lost data. Only read-only and shared maps are released (a private
copy-on-write map would lose its changes); anything else is left alone.

Three users:

- :func:`row_blocks` walks an array in blocks of about :data:`BLOCK_BYTES` and releases each
  block once the caller is done with it (streaming statistics, checks for NaN);
- :class:`EpochOrder` is the order one epoch of ``training.fit`` visits the rows: a full
  permutation (``shuffle=True``), the file's order (``False``), or a chunked shuffle
  (``"chunks"`` or a :class:`ChunkShuffle`) that keeps each stretch of the epoch inside a
  window of the file, so a memory-mapped file is read window by window instead of at
  random over its whole length; a window is released as soon as the epoch has passed it;
- :class:`BatchGather` copies a mini-batch's rows into the workspace, through the caller's
  per-batch input transform when there is one (raw rows in, transformed rows out).
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deltaprop.errors import ConfigError, ConfigTypeError

__all__ = [
    "BLOCK_BYTES",
    "BatchGather",
    "ChunkShuffle",
    "EpochOrder",
    "InputTransform",
    "check_shuffle",
    "is_memory_mapped",
    "release",
    "row_blocks",
]

#: Bytes per block of :func:`row_blocks`: large enough that the per-block Python work is
#: negligible, small enough that a float64 copy of a block is a few MB.
BLOCK_BYTES = 8 << 20

#: ``transform(raw, out)``: raw rows in (any numeric dtype), transformed rows written into
#: ``out`` (the workspace's input buffer, the network's dtype, same shape, possibly a strided
#: view). It must write every entry of ``out`` in place and must not keep either array.
InputTransform = Callable[[np.ndarray, np.ndarray], None]


def _row_nbytes(X: np.ndarray) -> int:
    return max(1, math.prod(X.shape[1:]) * X.dtype.itemsize)


def _mapping(X: np.ndarray) -> tuple[mmap.mmap, int] | None:
    """The read-only or shared ``mmap`` behind ``X`` and its base address, or None."""
    obj: Any = X
    while obj is not None:
        if isinstance(obj, np.memmap):
            mapped = getattr(obj, "_mmap", None)
            if mapped is not None and obj.mode in ("r", "readonly", "r+", "readwrite"):
                try:
                    base = np.frombuffer(mapped, dtype=np.uint8).ctypes.data
                except (ValueError, TypeError):  # closed, or an empty map
                    return None
                return mapped, base
            return None
        obj = getattr(obj, "base", None)
    return None


def is_memory_mapped(X: Any) -> bool:
    """True if ``X`` is (a view of) a NumPy memory map of a file."""
    obj = X
    while obj is not None:
        if isinstance(obj, np.memmap):
            return True
        obj = getattr(obj, "base", None)
    return False


def release(X: np.ndarray, start: int, stop: int) -> None:
    """Drop rows ``start:stop`` of a memory-mapped ``X`` from the resident set.

    The pages go back to the kernel's page cache (``madvise(MADV_DONTNEED)``); reading the
    rows again faults them back in. A no-op for arrays in memory, private copy-on-write
    maps, and platforms without ``madvise``.
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or stop <= start or X.ndim == 0 or X.strides[0] <= 0:
        return
    found = _mapping(X)
    if found is None:
        return
    mapped, base = found
    first = X.ctypes.data + start * X.strides[0] - base
    last = X.ctypes.data + stop * X.strides[0] - base  # one past the rows' last byte
    page = mmap.PAGESIZE
    low = max(0, first // page * page)
    high = min(len(mapped), -(-last // page) * page)
    if high > low:
        mapped.madvise(advice, low, high - low)


def row_blocks(X: np.ndarray, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, X[start:stop])`` for consecutive blocks of about ``block_bytes``.

    The block is a view: use it before asking for the next one. Once the caller asks for
    the next block, a memory map's pages of the last one are released (:func:`release`), so
    one pass over a file of any size keeps at most one block resident.
    """
    n = len(X)
    rows = max(1, block_bytes // _row_nbytes(X))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        yield start, X[start:stop]
        release(X, start, stop)


@dataclass(frozen=True)
class ChunkShuffle:
    """Shuffle chunks of consecutive rows, then the rows within each window of chunks.

    Each epoch cuts the rows into chunks of about ``chunk_bytes`` (consecutive rows, as
    stored), puts the chunks in a random order, groups them into windows of about
    ``window_bytes``, and shuffles the rows within each window. The epoch visits the windows
    one after the other, so a memory-mapped file is read one window at a time — at most one
    window (plus one batch) is resident — and each read is a run of ``chunk_bytes`` rather
    than a scattered row. The cost is a less thorough shuffle: a mini-batch draws its rows
    from one window, not the whole data set (``docs/data.md`` measures the accuracy cost on
    Fashion-MNIST).

    Parameters
    ----------
    chunk_bytes : int, default 1 MiB
        Size of a chunk of consecutive rows (at least one row).
    window_bytes : int, default 32 MiB
        Size of a window of chunks whose rows are mixed (at least one chunk).
    """

    chunk_bytes: int = 1 << 20
    window_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        for name in ("chunk_bytes", "window_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigTypeError(f"`{name}` must be an integer; got {value!r}")
            if value < 1:
                raise ConfigError(f"`{name}` must be >= 1; got {value!r}")


def check_shuffle(shuffle: Any) -> bool | ChunkShuffle:
    """``shuffle`` as True, False or a :class:`ChunkShuffle` (``"chunks"``: the defaults)."""
    if isinstance(shuffle, ChunkShuffle):
        return shuffle
    if shuffle == "chunks":
        return ChunkShuffle()
    if isinstance(shuffle, (bool, np.bool_)):
        return bool(shuffle)
    raise ConfigError(
        f"`shuffle` must be True, False, 'chunks' or a ChunkShuffle; got {shuffle!r}"
    )


class EpochOrder:
    """The order in which one epoch visits the rows of ``X``, window by window.

    ``index`` holds the epoch's row order; :meth:`draw` fills it for a new epoch and
    :meth:`consumed` is told how far the epoch has got, so the rows of a memory-mapped ``X``
    are released (:func:`release`) once the epoch has left their window.

    - ``shuffle=True``: ``index[:] = rng.permutation(n)``, one window (the whole data set);
    - ``shuffle=False``: the stored order, in windows of :class:`ChunkShuffle`'s default
      ``window_bytes``;
    - a :class:`ChunkShuffle`: see there.

    Parameters
    ----------
    X : ndarray of shape (n, ...)
    shuffle : bool, "chunks" or ChunkShuffle
    """

    def __init__(self, X: np.ndarray, shuffle: Any) -> None:
        self.shuffle = check_shuffle(shuffle)
        self._X = X
        self.n = n = len(X)
        self.index = np.arange(n)
        self._mapped = _mapping(X) is not None
        row_bytes = _row_nbytes(X)
        layout = self.shuffle if isinstance(self.shuffle, ChunkShuffle) else ChunkShuffle()
        self.chunk_rows = max(1, layout.chunk_bytes // row_bytes)
        self.window_chunks = max(1, layout.window_bytes // (self.chunk_rows * row_bytes))
        n_chunks = -(-n // self.chunk_rows)
        self._chunk_order = np.arange(n_chunks)
        self._window_ends: list[int] = []  # positions in `index` where each window ends
        self._next = 0
        self._lay_out_windows()

    def _chunk_lengths(self) -> np.ndarray:
        starts = self._chunk_order * self.chunk_rows
        return np.minimum(self.chunk_rows, self.n - starts)

    def _lay_out_windows(self) -> None:
        if self.shuffle is True:
            self._window_ends = [self.n]
        else:
            ends = np.cumsum(self._chunk_lengths())
            self._window_ends = [int(e) for e in ends[self.window_chunks - 1 :: self.window_chunks]]
            if not self._window_ends or self._window_ends[-1] != self.n:
                self._window_ends.append(self.n)
        self._next = 0

    def draw(self, rng: np.random.Generator) -> None:
        """Fill ``index`` with a new epoch's order (drawn from ``rng``; none for False)."""
        if self.shuffle is True:
            # Exactly one permutation per epoch, as always: a checkpoint's generator state
            # resumes the same order, and results do not change with this module.
            self.index[:] = rng.permutation(self.n)
        elif isinstance(self.shuffle, ChunkShuffle):
            self._chunk_order = rng.permutation(len(self._chunk_order))
            lengths = self._chunk_lengths()
            first_position = np.cumsum(lengths) - lengths
            starts = self._chunk_order * self.chunk_rows
            # row at position p = its chunk's first row + (p − the chunk's first position)
            self.index[:] = np.repeat(starts - first_position, lengths) + np.arange(self.n)
            self._lay_out_windows()
            low = 0
            for high in self._window_ends:
                rng.shuffle(self.index[low:high])
                low = high
        self._next = 0

    def consumed(self, position: int) -> None:
        """The rows ``index[:position]`` have been read: release the windows left behind."""
        if not self._mapped:
            return
        while self._next < len(self._window_ends) and self._window_ends[self._next] <= position:
            self._release_window(self._next)
            self._next += 1

    def release_all(self) -> None:
        """Release every row of a memory-mapped ``X`` (at the end of training)."""
        if self._mapped:
            release(self._X, 0, self.n)

    def _release_window(self, k: int) -> None:
        if self.shuffle is True:
            release(self._X, 0, self.n)
            return
        chunks = self._chunk_order[k * self.window_chunks : (k + 1) * self.window_chunks]
        for chunk in chunks:
            start = int(chunk) * self.chunk_rows
            release(self._X, start, min(self.n, start + self.chunk_rows))


class BatchGather:
    """Copy a mini-batch's rows of ``X`` into the workspace's input buffer.

    Without a transform, and with ``X`` already in the network's dtype, the rows go
    straight into the buffer (``np.take(..., out=)``). Otherwise they are gathered into a
    preallocated buffer of ``X``'s own dtype (e.g. the uint8 pixels of a memory-mapped
    file) and then ``transform(raw, out)`` writes the network's inputs — or, without a
    transform, the raw rows are cast. Nothing is allocated per batch.

    Parameters
    ----------
    X : ndarray of shape (n, n_0)
    m : int
        The largest batch.
    dtype : numpy dtype
        The network's dtype (the workspace's).
    transform : InputTransform or None
    """

    def __init__(
        self, X: np.ndarray, m: int, dtype: np.dtype, transform: InputTransform | None = None
    ) -> None:
        self.X = X
        self.transform = transform
        direct = transform is None and X.dtype == dtype
        self._raw = None if direct else np.empty((m, *X.shape[1:]), dtype=X.dtype)

    def __call__(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Write ``X[rows]`` (transformed) into ``out``, of shape (len(rows), n_0)."""
        # mode="clip": the rows come from an epoch order, so none is out of range, and
        # NumPy's default "raise" mode gathers through a buffer, 3× slower.
        if self._raw is None:
            np.take(self.X, rows, axis=0, out=out, mode="clip")
            return
        raw = self._raw[: rows.size]
        np.take(self.X, rows, axis=0, out=raw, mode="clip")
        if self.transform is None:
            np.copyto(out, raw, casting="unsafe")
        else:
            self.transform(raw, out)
