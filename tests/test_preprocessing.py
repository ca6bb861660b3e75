"""deltaprop.preprocessing: the streaming Scaler.fit and the per-batch transform_into."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import streaming
from deltaprop.errors import DataError
from deltaprop.preprocessing import Scaler


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2016)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so every fit below combines many blocks."""
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_streaming_fit_matches_whole_array_statistics(rng, small_blocks, dtype):
    X = rng.standard_normal((501, 7)) * [1, 10, 1e3, 0.1, 5, 2, 1] + 100 * rng.random(7)
    if dtype == np.uint8:
        X = rng.integers(0, 256, (501, 7))
    X = X.astype(dtype)
    X[:, 4] = X[0, 4]  # a constant feature: scale 1
    X64 = X.astype(np.float64)
    standard = Scaler("standard").fit(X)
    # Chan's pairwise update against NumPy's two-pass mean and std, both in float64: they
    # differ only by rounding, about eps · |mean| / std ≤ 2.2e-16 · 1e3 here; 1e-12 is
    # that bound with a factor of 5 to spare.
    np.testing.assert_allclose(standard.offset, X64.mean(axis=0), rtol=1e-12)
    want = X64.std(axis=0)
    want[4] = 1.0
    np.testing.assert_allclose(standard.scale, want, rtol=1e-12)
    minmax = Scaler("minmax").fit(X)
    np.testing.assert_array_equal(minmax.offset, X64.min(axis=0))
    span = X64.max(axis=0) - X64.min(axis=0)
    np.testing.assert_array_equal(minmax.scale, np.where(span > 0, span, 1.0))


def test_fit_on_a_memory_map_equals_fit_on_the_array(tmp_path, rng, small_blocks):
    X = rng.standard_normal((333, 5)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    a, b = Scaler("standard").fit(X), Scaler("standard").fit(mapped)
    np.testing.assert_array_equal(a.offset, b.offset)
    np.testing.assert_array_equal(a.scale, b.scale)


def test_fit_finds_nan_in_any_block(rng, small_blocks):
    X = rng.standard_normal((200, 3))
    X[187, 1] = np.nan
    for kind in ("standard", "minmax", "none"):
        with pytest.raises(DataError, match="`X` contains NaN or infinity"):
            Scaler(kind).fit(X)
    with pytest.raises(DataError, match="`X` contains NaN or infinity"):
        Scaler("divide", 255.0).fit(X)


@pytest.mark.parametrize("kind", ["standard", "minmax", "divide", "none"])
def test_transform_into_writes_what_transform_returns(rng, kind):
    raw = rng.integers(0, 256, (40, 6), dtype=np.uint8)
    scaler = Scaler(kind, 255.0 if kind == "divide" else None).fit(raw)
    for dtype in (np.float32, np.float64):
        wide = np.full((40, 7), -1.0, dtype=dtype)
        out = wide[:, :6]  # a strided view, as the workspace's inputs with a bias unit
        scaler.transform_into(raw, out)
        np.testing.assert_array_equal(out, scaler.transform(raw, dtype))
        assert (wide[:, 6] == -1.0).all()
    with pytest.raises(DataError, match=r"`out` has shape \(40, 5\); `X` has shape \(40, 6\)"):
        scaler.transform_into(raw, np.empty((40, 5), np.float32))
