"""Rows of arrays larger than memory: read in blocks, and fed to training window by window.

A NumPy memory map (``np.load(path, mmap_mode="r")``, ``np.memmap``) reads its file lazily,
but every page the process touches stays mapped into it and counts in its resident set
(RSS) until the map is closed — and the kernel maps file pages in whole folios (2 MiB on
the Linux 6.x this was measured on), so touching one row of a 3 KB-row file can map 2 MiB.
This module therefore never reads a memory map through the map: :class:`FileRows` finds the
file and byte offset behind the map and reads rows with plain ``read`` calls into a buffer
that is allocated once and reused. What the process holds is that buffer, exactly; the
file's pages live in the kernel's page cache, which is not the process's memory.

- :func:`row_blocks` walks an array in blocks of about :data:`BLOCK_BYTES` (streaming
  statistics, checks for NaN): views for an array in memory, the one reused block buffer
  for a memory map.
- :class:`BatchFeed` is what one epoch of ``training.fit`` visits: the row order (a full
  permutation, the stored order, or a chunked shuffle — :class:`ChunkShuffle`) and the
  copy of each mini-batch's rows into the network's input buffer, through the caller's
  per-batch transform (raw rows in, transformed rows out). With a chunked shuffle (or no
  shuffle) a memory map is read one *window* of chunks at a time into the window buffer,
  so training holds one window of the file, whatever its size; the order is the same as
  for the same array in memory, so both train identically.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from deltaprop.errors import ConfigError, ConfigTypeError, DataError

__all__ = [
    "BLOCK_BYTES",
    "BatchFeed",
    "ChunkShuffle",
    "FileRows",
    "InputTransform",
    "check_shuffle",
    "is_memory_mapped",
    "row_blocks",
    "transformed",
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


def _memmap_root(X: Any) -> np.memmap | None:
    obj = X
    while obj is not None:
        if isinstance(obj, np.memmap) and getattr(obj, "_mmap", None) is not None:
            return obj
        obj = getattr(obj, "base", None)
    return None


def is_memory_mapped(X: Any) -> bool:
    """True if ``X`` is (a view of) a NumPy memory map of a file."""
    return _memmap_root(X) is not None


class FileRows:
    """Read rows of a memory-mapped array from its file, with ``read``, not through the map.

    Works for any view whose rows run forward through the file (``X[a:b]``, ``X[:, 1:]``,
    reshapes) of a read-only or shared map (a private copy-on-write map may hold changes
    the file does not; :meth:`of` returns None for it, and for arrays in memory).
    """

    def __init__(self, X: np.ndarray, path: str, first: int) -> None:
        self.X = X
        self.path = path
        self.first = first  # file offset of X[0]'s first byte
        self.stride = X.strides[0]
        # bytes one row spans (a column slice spans less than the stride)
        self.extent = X.dtype.itemsize + sum(
            (d - 1) * s for d, s in zip(X.shape[1:], X.strides[1:], strict=True)
        )
        self.contiguous = X[:1].flags.c_contiguous and self.extent == self.stride
        self._file: BinaryIO | None = None
        self._scratch = np.empty(0, dtype=np.uint8)

    @classmethod
    def of(cls, X: np.ndarray) -> FileRows | None:
        """A reader for ``X``'s rows, or None if ``X`` is not (usably) file-backed."""
        root = _memmap_root(X)
        if root is None or root.mode in ("c", "copyonwrite"):
            return None
        if X.ndim == 0 or X.strides[0] <= 0 or any(s < 0 for s in X.strides):
            return None
        try:
            base = np.frombuffer(root._mmap, dtype=np.uint8).ctypes.data
        except (ValueError, TypeError):  # a closed or empty map
            return None
        start = root.offset - root.offset % mmap.ALLOCATIONGRANULARITY  # where the map begins
        return cls(X, os.fspath(root.filename), start + X.ctypes.data - base)

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Copy rows ``start:stop`` of ``X`` into ``out`` (C-contiguous, ``X``'s dtype)."""
        count = stop - start
        if count <= 0:
            return
        span = (count - 1) * self.stride + self.extent
        if self.contiguous:
            self._read_into(self.first + start * self.stride, out.reshape(-1).view(np.uint8))
            return
        if self._scratch.size < span:
            self._scratch = np.empty(span, dtype=np.uint8)
        raw = self._scratch[:span]
        self._read_into(self.first + start * self.stride, raw)
        rows = np.lib.stride_tricks.as_strided(
            raw.view(self.X.dtype),  # span is a whole number of items: it starts at a row
            shape=(count, *self.X.shape[1:]),
            strides=self.X.strides,
            writeable=False,
        )
        np.copyto(out[:count], rows)

    def _read_into(self, offset: int, view: np.ndarray) -> None:
        if self._file is None:
            self._file = open(self.path, "rb", buffering=0)  # closed by close()
        self._file.seek(offset)
        memory = memoryview(view)
        done = 0
        while done < len(memory):
            got = self._file.readinto(memory[done:])
            if not got:
                raise DataError(f"{self.path}: the file ended before the array did")
            done += got

    def close(self) -> None:
        """Close the file (reads reopen it)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def row_blocks(
    X: np.ndarray, block_bytes: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows)`` for consecutive blocks of about ``block_bytes`` (default
    :data:`BLOCK_BYTES`) of ``X``'s rows.

    For an array in memory ``rows`` is the view ``X[start:stop]``; for a memory map it is
    one buffer, read from the file and reused for every block, so one pass over a file of
    any size holds one block. Use a block before asking for the next.
    """
    n = len(X)
    rows = max(1, (block_bytes or BLOCK_BYTES) // _row_nbytes(X))
    reader = FileRows.of(X)
    buffer = None if reader is None else np.empty((min(rows, n), *X.shape[1:]), X.dtype)
    try:
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            if reader is None or buffer is None:
                yield start, X[start:stop]
            else:
                reader.read(start, stop, buffer[: stop - start])
                yield start, buffer[: stop - start]
    finally:
        if reader is not None:
            reader.close()


def transformed(
    X: np.ndarray, dtype: np.dtype, transform: InputTransform | None = None
) -> np.ndarray:
    """All rows of ``X`` as one array of ``dtype``, through ``transform`` block by block.

    For data small enough to hold once converted (validation data).
    """
    out = np.empty((len(X), *X.shape[1:]), dtype=dtype)
    for start, block in row_blocks(X):
        target = out[start : start + len(block)]
        if transform is None:
            np.copyto(target, block, casting="unsafe")
        else:
            transform(block, target)
    return out


@dataclass(frozen=True)
class ChunkShuffle:
    """Shuffle chunks of consecutive rows, then the rows within each window of chunks.

    Each epoch cuts the rows into chunks of about ``chunk_bytes`` (consecutive rows, as
    stored), puts the chunks in a random order, groups them into windows of about
    ``window_bytes``, and shuffles the rows within each window. The epoch visits the windows
    one after the other, so a memory-mapped file is read one window at a time, as runs of
    ``chunk_bytes``, into a buffer of ``window_bytes``. The cost is a less thorough shuffle:
    a mini-batch draws its rows from one window, not the whole data set (``docs/data.md``
    measures the accuracy cost on Fashion-MNIST).

    Parameters
    ----------
    chunk_bytes : int, default 256 KiB
        Size of a chunk of consecutive rows (at least one row). Many chunks per window mix
        the window well even when the stored rows are sorted by class: on Fashion-MNIST
        sorted by class, 128 chunks of 256 KiB per window train as well as a full shuffle,
        32 chunks of 1 MiB lose 4 points of test accuracy (``docs/data.md``).
    window_bytes : int, default 32 MiB
        Size of a window of chunks whose rows are mixed (at least one chunk); the buffer a
        memory-mapped file is read into.
    """

    chunk_bytes: int = 256 << 10
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
    if isinstance(shuffle, str) and shuffle == "chunks":
        return ChunkShuffle()
    if isinstance(shuffle, (bool, np.bool_)):
        return bool(shuffle)
    raise ConfigError(
        f"`shuffle` must be True, False, 'chunks' or a ChunkShuffle; got {shuffle!r}"
    )


class BatchFeed:
    """The rows one epoch visits, and their copy into the workspace batch by batch.

    ``index`` holds the epoch's row order; :meth:`draw` fills it for a new epoch and
    :meth:`gather` writes the inputs of the rows at positions ``start:stop`` of it:

    - ``shuffle=True``: ``index[:] = rng.permutation(n)`` (one draw per epoch, as always);
      rows are gathered from ``X`` directly — from a memory map, through the map, so every
      page touched stays resident: use a chunked shuffle for files larger than memory.
    - ``shuffle=False``: the stored order; ``ChunkShuffle``: see there. A memory map is
      read window by window (:class:`FileRows`) into a buffer of one window.

    Without a transform, and with ``X`` already in the network's dtype, rows go straight
    into the input buffer (``np.take(..., out=)``); otherwise they are gathered into a
    preallocated buffer of ``X``'s own dtype (e.g. the uint8 pixels of a file) and
    ``transform(raw, out)`` writes the network's inputs (without a transform they are cast).
    Nothing is allocated per batch.

    Parameters
    ----------
    X : ndarray of shape (n, n_0)
    m : int
        The largest batch.
    dtype : numpy dtype
        The network's dtype (the workspace's).
    shuffle : bool, "chunks" or ChunkShuffle
    transform : InputTransform or None
    """

    def __init__(
        self,
        X: np.ndarray,
        m: int,
        dtype: np.dtype,
        shuffle: Any = True,
        transform: InputTransform | None = None,
    ) -> None:
        self.shuffle = check_shuffle(shuffle)
        self.X = X
        self.transform = transform
        self.n = n = X.shape[0]  # a scipy.sparse X (whose rows TrainStep gathers) has no len
        self.index = np.arange(n)
        row_bytes = _row_nbytes(X)
        layout = self.shuffle if isinstance(self.shuffle, ChunkShuffle) else ChunkShuffle()
        self.chunk_rows = max(1, min(n, layout.chunk_bytes // row_bytes))
        self.window_chunks = max(1, layout.window_bytes // (self.chunk_rows * row_bytes))
        self._chunk_order = np.arange(-(-n // self.chunk_rows))
        self._reader = None if self.shuffle is True else FileRows.of(X)
        self._window_ends = [n]  # positions in `index` where each window ends
        self._window = 0  # the window whose rows the buffer holds (with a reader)
        self._loaded_end = 0  # position where the loaded window ends (0: none loaded)
        if self._reader is not None:
            rows = min(n, self.window_chunks * self.chunk_rows)
            self._buffer = np.empty((rows, *X.shape[1:]), dtype=X.dtype)
            self._local = np.empty(n, dtype=np.intp)  # each position's row in the buffer
        direct = transform is None and X.dtype == dtype
        self._raw = None if direct else np.empty((m, *X.shape[1:]), dtype=X.dtype)
        self._lay_out(shuffled=False)

    def _chunk_lengths(self) -> np.ndarray:
        starts = self._chunk_order * self.chunk_rows
        return np.minimum(self.chunk_rows, self.n - starts)

    def _lay_out(self, shuffled: bool, rng: np.random.Generator | None = None) -> None:
        """``index`` (and the buffer rows) for the current chunk order, window by window."""
        if self.shuffle is True:
            return
        lengths = self._chunk_lengths()
        ends = np.cumsum(lengths)
        # row at position p = its chunk's first row + (p − the chunk's first position)
        first_position = ends - lengths
        starts = self._chunk_order * self.chunk_rows
        self.index[:] = np.repeat(starts - first_position, lengths) + np.arange(self.n)
        self._window_ends = [int(e) for e in ends[self.window_chunks - 1 :: self.window_chunks]]
        if not self._window_ends or self._window_ends[-1] != self.n:
            self._window_ends.append(self.n)
        low = 0
        for high in self._window_ends:
            order = np.arange(high - low)
            if shuffled and rng is not None:
                order = rng.permutation(high - low)
                self.index[low:high] = self.index[low:high][order]
            if self._reader is not None:
                self._local[low:high] = order
            low = high

    def draw(self, rng: np.random.Generator) -> None:
        """A new epoch's order in ``index`` (drawn from ``rng``; nothing drawn for False)."""
        if self.shuffle is True:
            # Exactly one permutation per epoch, as always: a checkpoint's generator state
            # resumes the same order, and results do not change with this module.
            self.index[:] = rng.permutation(self.n)
        elif isinstance(self.shuffle, ChunkShuffle):
            self._chunk_order = rng.permutation(len(self._chunk_order))
            self._lay_out(shuffled=True, rng=rng)
        self._window, self._loaded_end = 0, 0

    def gather(self, start: int, stop: int, out: np.ndarray) -> None:
        """Write the inputs of the rows ``index[start:stop]`` (transformed) into ``out``."""
        if self._reader is None:
            self._emit(self.X, self.index[start:stop], out)
            return
        position = start
        while position < stop:  # a batch may span the end of one window and the next
            if position >= self._loaded_end:
                self._load_window_at(position)
            end = min(stop, self._loaded_end)
            self._emit(self._buffer, self._local[position:end], out[position - start : end - start])
            position = end

    def _load_window_at(self, position: int) -> None:
        while self._window_ends[self._window] <= position:
            self._window += 1
        k = self._window
        chunks = self._chunk_order[k * self.window_chunks : (k + 1) * self.window_chunks]
        slot = 0
        for chunk in chunks:
            first = int(chunk) * self.chunk_rows
            last = min(self.n, first + self.chunk_rows)
            self._reader.read(first, last, self._buffer[slot : slot + last - first])  # type: ignore[union-attr]
            slot += last - first
        self._loaded_end = self._window_ends[k]

    def _emit(self, source: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        # mode="clip": the rows come from the epoch order, so none is out of range, and
        # NumPy's default "raise" mode gathers through a buffer, 3× slower.
        if self._raw is None:
            np.take(source, rows, axis=0, out=out, mode="clip")
            return
        raw = self._raw[: rows.size]
        np.take(source, rows, axis=0, out=raw, mode="clip")
        if self.transform is None:
            np.copyto(out, raw, casting="unsafe")
        else:
            self.transform(raw, out)

    def close(self) -> None:
        """Close the file a memory map is read from."""
        if self._reader is not None:
            self._reader.close()
