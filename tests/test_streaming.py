"""deltaprop.streaming and fit on memory maps: the epoch order, reads from the file, RSS bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deltaprop import streaming, training
from deltaprop.network import Network
from deltaprop.preprocessing import Scaler
from deltaprop.streaming import BatchFeed, ChunkShuffle, FileRows

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1616)


def _mapped(tmp_path, array: np.ndarray, name: str = "X.npy") -> np.memmap:
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.mark.parametrize(
    ("shuffle", "expected"),
    [(True, True), (False, False), (np.bool_(True), True), ("chunks", ChunkShuffle())],
)
def test_check_shuffle_accepts(shuffle, expected):
    assert streaming.check_shuffle(shuffle) == expected


@pytest.mark.parametrize("shuffle", ["rows", 1, None, 0.5])
def test_check_shuffle_rejects(shuffle):
    with pytest.raises(ValueError, match="`shuffle` must be True, False, 'chunks' or a "
                       "ChunkShuffle; got"):
        streaming.check_shuffle(shuffle)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"chunk_bytes": 0}, ValueError, "`chunk_bytes` must be >= 1; got 0"),
    ({"window_bytes": -5}, ValueError, "`window_bytes` must be >= 1; got -5"),
    ({"chunk_bytes": 1.5}, TypeError, "`chunk_bytes` must be an integer; got 1.5"),
    ({"window_bytes": True}, TypeError, "`window_bytes` must be an integer; got True"),
])
def test_chunk_shuffle_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        ChunkShuffle(**kwargs)


def test_full_shuffle_is_one_permutation_per_epoch():
    """shuffle=True draws exactly what fit always drew, so old results and checkpoints hold."""
    feed = BatchFeed(np.zeros((57, 3)), 8, np.dtype(np.float64), True)
    rng, twin = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):
        feed.draw(rng)
        np.testing.assert_array_equal(feed.index, twin.permutation(57))
    feed = BatchFeed(np.zeros((57, 3)), 8, np.dtype(np.float64), False)
    feed.draw(rng)
    np.testing.assert_array_equal(feed.index, np.arange(57))


def test_chunked_order_keeps_each_window_to_its_chunks():
    n, row_bytes = 1000, 4 * 8  # (n, 4) float64
    layout = ChunkShuffle(chunk_bytes=30 * row_bytes, window_bytes=4 * 30 * row_bytes)
    feed = BatchFeed(np.zeros((n, 4)), 16, np.dtype(np.float64), layout)
    assert (feed.chunk_rows, feed.window_chunks) == (30, 4)
    rng = np.random.default_rng(0)
    orders = []
    for _ in range(2):
        feed.draw(rng)
        index = feed.index.copy()
        orders.append(index)
        np.testing.assert_array_equal(np.sort(index), np.arange(n))  # every row, once
        chunk_of = index // 30
        low = 0
        for high in feed._window_ends:  # a window's rows come from at most 4 chunks
            assert len(np.unique(chunk_of[low:high])) <= 4
            low = high
        assert len(feed._window_ends) == 9  # 34 chunks (the last one short) in windows of 4
        assert not np.array_equal(index, np.sort(index))
    assert not np.array_equal(*orders)  # a new order each epoch


def _batches(feed: BatchFeed, m: int, n_0: int, dtype) -> list[np.ndarray]:
    out = np.empty((m, n_0), dtype=dtype)
    batches = []
    for start in range(0, feed.n, m):
        stop = min(feed.n, start + m)
        feed.gather(start, stop, out[: stop - start])
        batches.append(out[: stop - start].copy())
    return batches


@pytest.mark.parametrize("shuffle", [
    False, True, ChunkShuffle(chunk_bytes=100, window_bytes=250), ChunkShuffle(1 << 20, 1 << 22),
])
def test_a_memory_map_feeds_the_same_batches_as_the_array(tmp_path, rng, shuffle):
    """Read from the file window by window, or gathered from memory: the same batches, also
    when a batch spans two windows (windows of 10 and 11 rows, batches of 7)."""
    X = rng.integers(0, 256, (203, 10), dtype=np.uint8)
    mapped = _mapped(tmp_path, X)
    scaler = Scaler("divide", 255.0)
    for transform in (None, scaler.transform_into):
        a = BatchFeed(X, 7, np.dtype(np.float32), shuffle, transform)
        b = BatchFeed(mapped, 7, np.dtype(np.float32), shuffle, transform)
        assert (b._reader is not None) == (shuffle is not True)
        for seed in (1, 2):
            a.draw(np.random.default_rng(seed))
            b.draw(np.random.default_rng(seed))
            np.testing.assert_array_equal(a.index, b.index)
            for p, q, start in zip(_batches(a, 7, 10, np.float32), _batches(b, 7, 10, np.float32),
                                   range(0, 203, 7), strict=True):
                want = X[a.index[start : start + 7]].astype(np.float32)
                if transform is not None:
                    want /= np.float32(255.0)
                np.testing.assert_array_equal(p, want)
                np.testing.assert_array_equal(q, want)
        b.close()


def test_file_rows_reads_views_of_a_map(tmp_path, rng):
    M = rng.standard_normal((50, 6)).astype(np.float32)
    mapped = _mapped(tmp_path, M)
    for view in (mapped, mapped[7:], mapped[:, 1:], mapped[3:40, :-2], mapped.reshape(50, 2, 3)):
        reader = FileRows.of(view)
        assert reader is not None
        out = np.empty((9, *view.shape[1:]), dtype=view.dtype)
        reader.read(4, 13, out)
        np.testing.assert_array_equal(out, view[4:13])
        reader.close()
    # a member of an .npz archive starts at an odd offset inside the zip file
    np.savez(tmp_path / "a.npz", first=np.arange(5), X=M)
    from deltaprop.data.npy import _map_member

    member = _map_member(str(tmp_path / "a.npz"), "X")
    reader = FileRows.of(member[:, 2:])
    out = np.empty((50, 4), dtype=np.float32)
    reader.read(0, 50, out)
    np.testing.assert_array_equal(out, M[:, 2:])
    reader.close()
    assert FileRows.of(M) is None  # in memory
    assert FileRows.of(np.load(tmp_path / "X.npy", mmap_mode="c")) is None  # private copy
    assert FileRows.of(mapped[::-1]) is None  # rows running backwards


def test_row_blocks_of_a_map_equal_the_array(tmp_path, rng):
    X = rng.standard_normal((301, 5))
    mapped = _mapped(tmp_path, X)
    seen = [(start, block.copy()) for start, block in streaming.row_blocks(mapped, 8 * 5 * 40)]
    assert [start for start, _ in seen] == list(range(0, 301, 40))
    np.testing.assert_array_equal(np.concatenate([b for _, b in seen]), X)
    np.testing.assert_array_equal(streaming.transformed(mapped, np.dtype(np.float32)),
                                  X.astype(np.float32))


def _weights(net: Network) -> list[np.ndarray]:
    return [p.copy() for _, p in net.parameters()]


@pytest.mark.parametrize("shuffle", [True, False, "chunks", ChunkShuffle(512, 2048)])
def test_fit_on_a_memory_map_equals_fit_in_memory(tmp_path, rng, shuffle):
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    mapped = _mapped(tmp_path, X)
    nets = []
    for features in (X, mapped):
        net = Network([6, 5, 2], seed=3)
        training.fit(net, features, y, epochs=3, batch_size=16, shuffle=shuffle, verbose=0,
                     validation_data=(X[:50], y[:50]))
        nets.append(_weights(net))
    for p, q in zip(*nets, strict=True):
        np.testing.assert_array_equal(p, q)


def test_fit_with_an_input_transform_equals_fit_on_transformed_rows(tmp_path, rng):
    pixels = rng.integers(0, 256, (240, 8), dtype=np.uint8)
    y = (pixels[:, 0] > 127).astype(np.int64)
    scaler = Scaler("standard").fit(pixels)
    mapped = _mapped(tmp_path, pixels)
    a, b = Network([8, 6, 2], seed=1), Network([8, 6, 2], seed=1)
    ha = training.fit(a, scaler.transform(pixels), y, epochs=2, batch_size=32, verbose=0,
                      validation_data=(scaler.transform(pixels[:40]), y[:40]), shuffle="chunks")
    hb = training.fit(b, mapped, y, epochs=2, batch_size=32, verbose=0, shuffle="chunks",
                      input_transform=scaler.transform_into, validation_data=(pixels[:40], y[:40]))
    for p, q in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=0)
    assert ha.val_loss == hb.val_loss


def test_fit_refuses_a_validation_split_of_a_memory_map(tmp_path, rng):
    mapped = _mapped(tmp_path, rng.standard_normal((40, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="`validation_split` would copy a memory-mapped X"):
        training.fit(Network([3, 2], seed=0), mapped, np.arange(40) % 2, validation_split=0.2,
                     verbose=0)
    with pytest.raises(ValueError, match=r"`X` must have shape \(m, 3\); got shape \(40, 4\)"):
        training.fit(Network([3, 2], seed=0), rng.standard_normal((40, 4)), np.arange(40) % 2,
                     input_transform=lambda raw, out: None, verbose=0)


# The child trains one epoch on a memory-mapped .npy (96000 × 784 float32, 301 MB) after a
# streaming Scaler.fit, and reports its peak RSS (VmHWM) and its RSS before it opened the
# file. Its growth must stay under 25 % of the file: one window (32 MiB) plus the scaler's
# block copies (8 MB of float32 rows, 16 MB as float64) and the targets, with room for
# allocator noise; gathering batches through the map (shuffle=True) shows the measurement
# sees file pages: that run holds most of the training rows (226 MB).
_CHILD = """
import json, sys
import numpy as np
from deltaprop import data, training
from deltaprop.network import Network
from deltaprop.preprocessing import Scaler

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

before = status("VmRSS")
ds = data.load(sys.argv[1], target=sys.argv[2])
scaler = Scaler("standard").fit(ds.X_train)
net = Network([784, 16, 10], seed=0)
history = training.fit(net, ds.X_train, ds.y_train, epochs=1, batch_size=512, verbose=0,
                       shuffle=True if sys.argv[3] == "full" else "chunks",
                       input_transform=scaler.transform_into)
print(json.dumps({"before": before, "peak": status("VmHWM"), "loss": history.loss[-1],
                  "mapped": ds.memory_mapped, "train_bytes": ds.X_train.nbytes}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
def test_out_of_core_training_holds_one_window_of_the_file(tmp_path):
    n, d = 96_000, 784
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    centres = rng.standard_normal((10, d)).astype(np.float32)
    for start in range(0, n, 8192):
        rows = slice(start, min(n, start + 8192))
        X[rows] = centres[y[rows]] + rng.standard_normal((len(y[rows]), d), dtype=np.float32)
    X.flush()
    del X
    np.save(tmp_path / "y.npy", y)
    size = os.path.getsize(tmp_path / "X.npy")
    results = {}
    for mode in ("chunks", "full"):
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), mode],
            env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        results[mode] = json.loads(proc.stdout)
    chunks, full = results["chunks"], results["full"]
    assert chunks["mapped"] and np.isfinite(chunks["loss"])
    growth = chunks["peak"] - chunks["before"]
    assert growth < 0.25 * size, f"chunks: grew {growth / 2**20:.0f} MiB of {size / 2**20:.0f}"
    full_growth = full["peak"] - full["before"]
    assert full_growth > 0.7 * full["train_bytes"], f"full: grew {full_growth / 2**20:.0f} MiB"
