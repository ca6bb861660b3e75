"""deltaprop.data.npy: .npy and .npz files, memory-mapped where stored, and their bad inputs."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest

from deltaprop import data
from deltaprop.data import npy
from deltaprop.errors import DataError


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(16)


def test_npy_features_with_a_labels_file_are_memory_mapped(tmp_path, rng):
    X = rng.integers(0, 256, (40, 2, 3), dtype=np.uint8)
    y = np.array(["no", "yes"] * 20)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    d = data.load(str(tmp_path / "X.npy"), target=str(tmp_path / "y.npy"))
    assert d.memory_mapped and isinstance(d.X_test, np.memmap)
    assert d.X_train.dtype == np.uint8 and d.feature_shape == (2, 3) and d.n_features == 6
    assert d.class_names == ["no", "yes"] and len(d.X_test) == 10  # ceil(0.25 * 40)
    np.testing.assert_array_equal(d.X_train, X[:30].reshape(30, 6))  # the tail is the test set
    np.testing.assert_array_equal(d.X_test, X[30:].reshape(10, 6))
    np.testing.assert_array_equal(d.y_test, (y[30:] == "yes").astype(np.int64))
    assert not d.X_train.flags.writeable


def test_npy_label_column_first_or_last(tmp_path, rng):
    labels = np.arange(24) % 3
    features = rng.standard_normal((24, 3)).astype(np.float32)
    np.save(tmp_path / "first.npy", np.column_stack([labels, features]).astype(np.float32))
    np.save(tmp_path / "last.npy", np.column_stack([features, labels]).astype(np.float32))
    for name, target in (("first.npy", "0"), ("last.npy", -1), ("last.npy", "3")):
        d = data.load(str(tmp_path / name), target=target)
        assert d.memory_mapped and d.class_names == ["0", "1", "2"] and d.n_features == 3
        np.testing.assert_array_equal(np.concatenate([d.X_train, d.X_test]), features)
        np.testing.assert_array_equal(np.concatenate([d.y_train, d.y_test]), labels)
    with pytest.raises(DataError, match=r"first\.npy: the label column must be the first \(0\) "
                       r"or the last \(-1\) of 4 columns; got '1'$"):
        data.load(str(tmp_path / "first.npy"), target="1")


def test_npy_bad_inputs_one_line(tmp_path, rng):
    X = rng.standard_normal((20, 3)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y19.npy", np.arange(19) % 2)
    name = str(tmp_path / "X.npy")
    with pytest.raises(DataError, match=r"X\.npy: cannot train on this file alone: a \.npy file "
                       r"holds only features; give its labels as target=LABELS\.npy"):
        data.load(name)
    with pytest.raises(DataError, match=re.escape(
            f"{name}: holds 20 rows (shape (20, 3)) but {tmp_path / 'y19.npy'} holds 19 "
            "labels (shape (19,)); they need one label per row")):
        data.load(name, target=str(tmp_path / "y19.npy"))
    with pytest.raises(DataError, match=r"missing\.npy: no such file$"):
        data.load(name, target=str(tmp_path / "missing.npy"))
    bad = X.copy()
    bad[13, 2] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    np.save(tmp_path / "y20.npy", np.arange(20) % 2)
    with pytest.raises(DataError, match=r"inf\.npy: non-finite value inf at sample 13, feature 2$"):
        data.load(str(tmp_path / "inf.npy"), target=str(tmp_path / "y20.npy"))
    np.save(tmp_path / "huge.npy", np.full((20, 2), 1e300))
    with pytest.raises(DataError, match=r"huge\.npy: value 1e\+300 does not fit in float32 at "
                       r"sample 0, feature 0$"):
        data.load(str(tmp_path / "huge.npy"), target=str(tmp_path / "y20.npy"))
    # float64 asked for: 1e300 fits
    assert data.load(str(tmp_path / "huge.npy"), target=str(tmp_path / "y20.npy"),
                     dtype="float64", task="classification").n_features == 2
    np.save(tmp_path / "flat.npy", np.arange(20.0))
    with pytest.raises(DataError, match=r"flat\.npy: features need 2 or more dimensions"):
        data.load(str(tmp_path / "flat.npy"), target=str(tmp_path / "y20.npy"))
    np.save(tmp_path / "text.npy", np.array([["a", "b"]] * 20))
    with pytest.raises(DataError, match=r"text\.npy: features must be numeric; got dtype <U1"):
        data.load(str(tmp_path / "text.npy"), target=str(tmp_path / "y20.npy"))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"junk\.npy: not a valid \.npy file"):
        data.load(str(tmp_path / "junk.npy"), target=str(tmp_path / "y20.npy"))
    np.save(tmp_path / "nan_y.npy", np.where(np.arange(20) == 4, np.nan, 1.0))
    with pytest.raises(DataError, match=r"nan_y\.npy: the labels contains NaN or infinity$"):
        data.load(name, target=str(tmp_path / "nan_y.npy"))


def test_fortran_order_is_read_into_memory(tmp_path, rng):
    X = np.asfortranarray(rng.standard_normal((20, 3)).astype(np.float32))
    np.save(tmp_path / "f.npy", X)
    np.save(tmp_path / "y.npy", np.arange(20) % 2)
    d = data.load(str(tmp_path / "f.npy"), target=str(tmp_path / "y.npy"))
    assert not d.memory_mapped  # a row of a Fortran array is scattered over the file
    assert len(d.X_train) + len(d.X_test) == 20


def test_npz_stored_members_are_mapped_compressed_ones_read(tmp_path, rng):
    X = rng.integers(0, 256, (60, 4, 4), dtype=np.uint8)
    y = np.arange(60) % 2
    np.savez(tmp_path / "s.npz", extra=np.arange(7), X=X, y=y)
    np.savez_compressed(tmp_path / "c.npz", X=X, y=y)
    stored = data.load(str(tmp_path / "s.npz"))
    compressed = data.load(str(tmp_path / "c.npz"))
    assert stored.memory_mapped and stored.X_train.dtype == np.uint8
    assert not compressed.memory_mapped and compressed.X_train.dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([stored.X_train, stored.X_test]),
                                  X.reshape(60, 16))
    mapped = npy._map_member(str(tmp_path / "s.npz"), "X")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, X)
    assert npy._map_member(str(tmp_path / "c.npz"), "X") is None


def test_npz_member_offset_with_zip64_extra_fields(tmp_path, rng):
    """A member written with a Zip64 extra field (as np.savez does) starts after it."""
    X = rng.standard_normal((9, 5))
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("y.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.arange(9) % 3)
        with archive.open("X.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, X)
    mapped = npy._map_member(str(path), "X")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, X)


def test_npz_test_member_and_tail_split_checks(tmp_path, rng):
    X = rng.standard_normal((30, 2)).astype(np.float32)
    np.savez(tmp_path / "t.npz", X=X[:20], y=np.arange(20) % 2, X_test=X[20:],
             y_test=np.arange(10) % 2)
    d = data.load(str(tmp_path / "t.npz"))
    assert isinstance(d.X_test, np.memmap) and len(d.X_test) == 10
    np.testing.assert_array_equal(d.X_test, X[20:])
    # rows sorted by class: the tail (test set) holds a class the training rows never show
    np.savez(tmp_path / "sorted.npz", X=X, y=np.repeat([0, 1, 2], [12, 12, 6]))
    with pytest.raises(DataError, match=r"sorted\.npz: class '2' occurs only in the last 8 rows, "
                       r"which are the test set of a memory-mapped file; shuffle the rows"):
        data.load(str(tmp_path / "sorted.npz"))


def test_read_features_of_npy_and_npz(tmp_path, rng):
    X = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", X=X)
    for name in ("x.npy", "x.npz"):
        features, names = data.read_features(tmp_path / name, dtype="float64")
        assert names is None and features.dtype == np.float64
        np.testing.assert_array_equal(features, X.reshape(5, 784))
