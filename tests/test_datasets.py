"""Tests for deltaprop.datasets: bundled, synthetic, IDX, CSV and NPZ loading; scaling."""

from __future__ import annotations

import gzip
import json
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaprop import datasets as ds
from deltaprop.datasets import DataError, Dataset, Scaler


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240531)


def _write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------------------
# Bundled sets
# --------------------------------------------------------------------------------------

BUNDLED = [
    # name, samples, features, classes (None: regression), feature_shape
    ("digits", 1797, 64, 10, (8, 8)),
    ("iris", 150, 4, 3, (4,)),
    ("wine", 178, 13, 3, (13,)),
    ("breast-cancer", 569, 30, 2, (30,)),
    ("diabetes", 442, 10, None, (10,)),
]


@pytest.mark.parametrize(("name", "n", "n_features", "n_classes", "shape"), BUNDLED)
def test_bundled_shapes(name, n, n_features, n_classes, shape):
    d = ds.load(name)
    assert isinstance(d, Dataset)
    assert d.name == name
    assert len(d.X_train) + len(d.X_test) == n
    assert len(d.X_test) == int(np.ceil(0.25 * n))
    assert d.X_train.shape[1] == d.X_test.shape[1] == d.n_features == n_features
    assert d.feature_shape == shape
    assert d.X_train.dtype == np.float32
    assert d.n_classes == n_classes
    if n_classes is None:
        assert d.task == "regression"
        assert d.class_names is None
        assert d.y_train.dtype == np.float32
        assert d.n_outputs == 1
    else:
        assert d.task == "classification"
        assert d.y_train.dtype == np.int64
        assert set(np.unique(d.y_train)) == set(range(n_classes))
        assert set(np.unique(d.y_test)) == set(range(n_classes))
        assert d.n_outputs == n_classes


def test_digits_pixels_and_stratified_split():
    d = ds.load_digits()
    X = np.concatenate([d.X_train, d.X_test])
    assert X.min() == 0 and X.max() == 16
    assert d.class_names == [str(k) for k in range(10)]
    # Stratified: each class's share of the test set is within one sample of 25 %.
    total = np.bincount(np.concatenate([d.y_train, d.y_test]))
    assert np.all(np.abs(np.bincount(d.y_test) - 0.25 * total) <= 1)


def test_bundled_seed_and_dtype():
    a, b, c = ds.load("iris", seed=1), ds.load("iris", seed=1), ds.load("iris", seed=2)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    assert ds.load("wine", dtype="float64").X_test.dtype == np.float64
    assert len(ds.load("iris", test_size=0.2).X_test) == 30


# --------------------------------------------------------------------------------------
# Synthetic sets
# --------------------------------------------------------------------------------------

SYNTHETIC = ["xor", "moons", "circles", "spirals"]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_shapes_and_determinism(name):
    # The legacy global state is read only to show the loaders never touch it.
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    d = ds.load(name, n_samples=200, seed=3)
    assert d.X_train.shape == (150, 2) and d.X_test.shape == (50, 2)
    assert d.feature_shape == (2,) and d.n_classes == 2
    assert np.bincount(d.y_train).tolist() == [75, 75]
    assert np.bincount(d.y_test).tolist() == [25, 25]
    again, other = ds.load(name, n_samples=200, seed=3), ds.load(name, n_samples=200, seed=4)
    np.testing.assert_array_equal(d.X_train, again.X_train)
    np.testing.assert_array_equal(d.y_test, again.y_test)
    assert not np.array_equal(d.X_train, other.X_train)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_synthetic_geometry_without_noise():
    moons = ds.load_moons(noise=0.0, dtype="float64")
    X, y = moons.X_train, moons.y_train
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    circles = ds.load_circles(noise=0.0, factor=0.3, dtype="float64")
    radius = np.hypot(*circles.X_test.T)
    np.testing.assert_allclose(radius, np.where(circles.y_test == 0, 1.0, 0.3))
    xor = ds.load_xor(noise=0.0)
    X = np.concatenate([xor.X_train, xor.X_test])
    y = np.concatenate([xor.y_train, xor.y_test])
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))


def test_spirals_arms_and_default_size():
    d = ds.load_spirals(n_classes=3, n_samples=301)
    assert d.n_classes == 3 and d.class_names == ["arm 0", "arm 1", "arm 2"]
    assert len(d.y_train) + len(d.y_test) == 301
    assert len(ds.load("spirals").y_train) == 300  # 400 points by default


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 3}, "n_samples"),
        ({"n_samples": 10.5}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"test_size": 1.0}, "test_size"),
        ({"dtype": "int32"}, "dtype"),
    ],
)
def test_synthetic_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ds.load_moons(**kwargs)


# --------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------

IDX_CODES = {0x08: "u1", 0x09: "i1", 0x0B: "i2", 0x0C: "i4", 0x0D: "f4", 0x0E: "f8"}
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)]


def _random_array(rng, kind: str, shape) -> np.ndarray:
    dtype = np.dtype(kind)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("code", sorted(IDX_CODES), ids=lambda c: f"0x{c:02X}")
def test_idx_round_trip(tmp_path, rng, code, shape, gz):
    array = _random_array(rng, IDX_CODES[code], shape)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    ds.write_idx(path, array)
    raw = path.read_bytes()
    if gz:
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw[:4] == bytes([0, 0, code, len(shape)])
    assert raw[4 : 4 + 4 * len(shape)] == b"".join(d.to_bytes(4, "big") for d in shape)
    assert raw[4 + 4 * len(shape) :] == array.astype(array.dtype.newbyteorder(">")).tobytes()
    back = ds.read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == shape
    assert back.flags.writeable
    np.testing.assert_array_equal(back, array)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_idx_compression_is_detected_by_content(tmp_path, rng):
    array = _random_array(rng, "f8", (4, 3))
    ds.write_idx(tmp_path / "a.gz", array)
    os.replace(tmp_path / "a.gz", tmp_path / "compressed-no-suffix")
    ds.write_idx(tmp_path / "b", array)
    os.replace(tmp_path / "b", tmp_path / "raw-with-suffix.gz")
    for name in ("compressed-no-suffix", "raw-with-suffix.gz"):
        np.testing.assert_array_equal(ds.read_idx(tmp_path / name), array)


def test_write_idx_accepts_big_endian_and_empty(tmp_path):
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    ds.write_idx(tmp_path / "big", big)
    np.testing.assert_array_equal(ds.read_idx(tmp_path / "big"), big)
    ds.write_idx(tmp_path / "empty", np.zeros((0, 28, 28), dtype=np.uint8))
    assert ds.read_idx(tmp_path / "empty").shape == (0, 28, 28)


def test_write_idx_replaces_existing_file(tmp_path):
    path = tmp_path / "x"
    ds.write_idx(path, np.zeros(3, dtype=np.uint8))
    ds.write_idx(path, np.ones(5, dtype=np.uint8))
    np.testing.assert_array_equal(ds.read_idx(path), np.ones(5))
    assert os.listdir(tmp_path) == ["x"]


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(3, dtype=np.int64), "cannot hold dtype int64"),
        (np.zeros(3, dtype=bool), "cannot hold dtype bool"),
        (np.array(5, dtype=np.uint8), "1 to 8 dimensions; got 0"),
        (np.zeros((1,) * 9, dtype=np.uint8), "1 to 8 dimensions; got 9"),
    ],
)
def test_write_idx_rejects(tmp_path, array, match):
    with pytest.raises(DataError, match=match):
        ds.write_idx(tmp_path / "x", array)
    assert os.listdir(tmp_path) == []


def test_write_idx_unwritable(tmp_path):
    with pytest.raises(DataError, match="cannot write"):
        ds.write_idx(tmp_path / "missing-dir" / "x", np.zeros(2, dtype=np.uint8))


def _header(code: int, dims) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


BAD_IDX = [
    (b"", "too short for an IDX file"),
    (b"\x00\x00", "too short for an IDX file"),
    (b"\x01\x00\x08\x01" + b"\0" * 4, r"not an IDX file \(magic number 01 00 08 01"),
    (b"\x00\x07\x08\x01" + b"\0" * 4, "not an IDX file"),
    (_header(0x0A, [1]) + b"\0", "unknown IDX data type code 0x0A"),
    (b"\x00\x00\x08\x00", "declares 0 dimensions"),
    (b"\x00\x00\x08\x09" + b"\0" * 36, "declares 9 dimensions"),
    (_header(0x08, [2, 3])[:-2], "truncated IDX header"),
    (
        _header(0x08, [2, 3]) + b"\0" * 5,
        r"declares shape \(2, 3\) of uint8, which needs 6 data bytes; the file holds 5",
    ),
    (
        _header(0x0C, [2]) + b"\0" * 9,
        "declares shape \\(2,\\) of int32, which needs 8 data bytes; the file holds 9",
    ),
    (
        _header(0x0E, [2**32 - 1] * 4) + b"\0" * 8,
        "declares shape .*, which needs 2\\d+ data bytes; the file holds 8",
    ),
]


@pytest.mark.parametrize(("data", "match"), BAD_IDX)
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_strict(tmp_path, data, match, gz):
    path = tmp_path / "bad-idx"
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    if gz:  # the gzip reader reports what it decompressed, or the size bound
        match = match.replace("the file holds", "the decompressed file holds")
        if "2\\d+" in match:
            match = r"declares shape .* \(2\d+ data bytes\), more than a 29-byte gzip file can hold"
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: (IDX header )?{match}"):
        ds.read_idx(path)


def test_read_idx_truncated_and_corrupt_gzip(tmp_path):
    packed = gzip.compress(_header(0x08, [100]) + bytes(range(100)), mtime=0)
    path = tmp_path / "t.gz"
    for cut in (len(packed) - 1, len(packed) - 8, len(packed) // 2, 12):
        path.write_bytes(packed[:cut])
        with pytest.raises(DataError, match="corrupt or truncated gzip data"):
            ds.read_idx(path)
    crc_broken = bytearray(packed)
    crc_broken[-5] ^= 0xFF
    path.write_bytes(bytes(crc_broken))
    with pytest.raises(DataError, match="corrupt or truncated gzip data"):
        ds.read_idx(path)
    path.write_bytes(b"\x1f\x8b")
    with pytest.raises(DataError, match="corrupt or truncated gzip data"):
        ds.read_idx(path)


def test_read_idx_file_errors(tmp_path):
    with pytest.raises(DataError, match=r"nope: no such file$"):
        ds.read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="is a directory"):
        ds.read_idx(tmp_path)


IDX_FUZZ = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: b"\x1f\x8b" + b),
    st.binary(max_size=64).map(lambda b: b"\x00\x00" + b),
    st.tuples(
        st.sampled_from([*IDX_CODES, 0x00, 0x0A, 0xFF]),
        st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=9),
        st.binary(max_size=64),
    ).map(lambda t: _header(t[0], t[1]) + t[2]),
    st.binary(max_size=64).map(lambda b: gzip.compress(_header(0x08, [len(b) // 2]) + b)),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=IDX_FUZZ, gz=st.booleans())
def test_read_idx_random_bytes_raise_only_data_error(tmp_path, data, gz):
    path = tmp_path / "fuzz"
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        array = ds.read_idx(path)
    except DataError:
        return
    assert isinstance(array, np.ndarray) and array.dtype.isnative


# --------------------------------------------------------------------------------------
# MNIST-style directories
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion() -> Dataset:
    if not os.path.isdir(ds.FASHION_MNIST_DIR):
        pytest.skip(
            f"{ds.FASHION_MNIST_DIR} is absent; apt-get install dataset-fashion-mnist to run"
        )
    return ds.load("fashion-mnist")


def test_fashion_mnist(fashion):
    assert fashion.X_train.shape == (60000, 784) and fashion.X_test.shape == (10000, 784)
    assert fashion.X_train.dtype == np.float32
    assert fashion.feature_shape == (28, 28)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.class_names == ds.FASHION_MNIST_CLASSES
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert fashion.X_train.min() == 0 and fashion.X_train.max() == 255
    assert ds.default_scaler("fashion-mnist").transform(fashion.X_test[:10]).max() <= 1.0


def _fake_mnist(directory, rng, n_train=12, n_test=7, shape=(28, 28), gz=(True, False)):
    directory.mkdir(exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for k, (stem, array) in enumerate(arrays.items()):
        ds.write_idx(directory / (stem + (".gz" if gz[k % 2] else "")), array)
    return arrays


def test_fake_mnist_directory(tmp_path, rng, monkeypatch):
    arrays = _fake_mnist(tmp_path / "mnist", rng)
    d = ds.load("mnist", data_dir=tmp_path / "mnist")
    assert d.name == "mnist" and d.class_names == [str(k) for k in range(10)]
    assert d.X_train.shape == (12, 784) and d.X_test.shape == (7, 784)
    np.testing.assert_array_equal(d.X_train, arrays["train-images-idx3-ubyte"].reshape(12, -1))
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert d.y_test.dtype == np.int64
    monkeypatch.setenv("DELTAPROP_MNIST", str(tmp_path / "mnist"))
    np.testing.assert_array_equal(ds.load("mnist").X_test, d.X_test)
    monkeypatch.setenv("DELTAPROP_FASHION_MNIST", str(tmp_path / "mnist"))
    assert ds.load("fashion-mnist").class_names == ds.FASHION_MNIST_CLASSES
    generic = ds.load(str(tmp_path / "mnist"))  # a directory path is an IDX directory
    assert generic.name == "mnist" and generic.feature_shape == (28, 28)
    np.testing.assert_array_equal(generic.y_train, d.y_train)


def test_generic_idx_directory_other_shape(tmp_path, rng):
    arrays = _fake_mnist(tmp_path / "small", rng, shape=(4, 5))
    d = ds.load(tmp_path / "small")
    assert d.feature_shape == (4, 5) and d.n_features == 20
    labels = np.concatenate([arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]])
    assert d.n_classes == labels.max() + 1
    with pytest.raises(DataError, match=r"images have shape \(4, 5\); mnist images are \(28, 28\)"):
        ds.load_mnist(tmp_path / "small")


def test_mnist_directory_errors(tmp_path, rng, monkeypatch):
    monkeypatch.delenv("DELTAPROP_MNIST", raising=False)
    with pytest.raises(DataError, match=r"mnist: no data directory given.*--data-dir DIR"):
        ds.load("mnist")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        ds.load("fashion-mnist", data_dir=tmp_path / "nope")
    monkeypatch.setenv("DELTAPROP_FASHION_MNIST", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="nope: no such directory; install Debian's"):
        ds.load("fashion-mnist")
    directory = tmp_path / "d"
    _fake_mnist(directory, rng)
    ds.write_idx(directory / "t10k-labels-idx1-ubyte", np.array([1, 2, 10], dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds 7 images but t10k-labels-idx1-ubyte holds 3"):
        ds.load_mnist(directory)
    ds.write_idx(directory / "t10k-labels-idx1-ubyte", np.array([0] * 6 + [10], dtype=np.uint8))
    with pytest.raises(DataError, match=r"label 10 at index 6; labels must be in 0..9"):
        ds.load_mnist(directory)
    ds.write_idx(directory / "t10k-labels-idx1-ubyte", np.zeros(7, dtype=np.float32))
    with pytest.raises(DataError, match="expected 1-D integer labels"):
        ds.load_mnist(directory)
    os.remove(directory / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match=r"no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte\.gz"):
        ds.load_mnist(directory)


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------


def test_csv_string_labels(tmp_path):
    rows = [f"{i},{i * 0.5},{'cat' if i % 2 else 'bird'}" for i in range(20)]
    path = _write(tmp_path / "pets.csv", "a,b,kind\n" + "\n".join(rows) + "\n")
    d = ds.load(path, seed=1)
    assert d.name == "pets.csv" and d.task == "classification"
    assert d.class_names == ["bird", "cat"]
    assert d.X_train.shape == (15, 2) and d.X_test.shape == (5, 2)
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    np.testing.assert_array_equal(y, X[:, 0] % 2)  # odd rows are cats → index 1


def test_csv_integer_labels_target_and_task(tmp_path):
    rows = [f"{[2, 10, 3][i % 3]},{i},{i % 5}.5" for i in range(30)]
    path = _write(tmp_path / "t.csv", "label,x1,x2\n" + "\n".join(rows) + "\n\n")
    d = ds.load_csv(path, target="label")
    assert d.task == "classification" and d.class_names == ["2", "3", "10"]  # numeric order
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    np.testing.assert_array_equal(
        np.array([2, 3, 10])[y], [[2, 10, 3][int(i) % 3] for i in X[:, 0]]
    )
    # The last column is the default target; x.5 values → regression under "auto".
    r = ds.load_csv(path, dtype="float64")
    assert r.task == "regression" and r.class_names is None and r.y_train.dtype == np.float64
    assert ds.load_csv(path, target="label", task="regression").task == "regression"
    forced = ds.load(path, task="classification")
    assert forced.class_names == ["0.5", "1.5", "2.5", "3.5", "4.5"]


def test_csv_regression_many_integers(tmp_path):
    rows = [f"{i},{3 * i + 1}" for i in range(40)]  # 40 distinct integers > AUTO_MAX_CLASSES
    d = ds.load(_write(tmp_path / "r.csv", "x,y\n" + "\n".join(rows)))
    assert d.task == "regression"
    np.testing.assert_array_equal(d.y_test, 3 * d.X_test[:, 0] + 1)


CSV_ERRORS = [
    ("", "empty file; expected a header row"),
    ("\n\n", "empty file"),
    ("a,b\n", "no data rows after the header"),
    ("a,b,c\n1,2,0\n3,x,1\n", r"line 3, column 'b': 'x' is not a number"),
    ("a,b,c\n1,2,0\n3,,1\n", "line 3, column 'b': empty cell"),
    ("a,b\n1,2\n3,4,5\n", "line 3: 3 fields; the header has 2"),
    ("a,b\n1,2\n3\n", "line 3: 1 fields; the header has 2"),
    ("a,b\ninf,1\n1,2\n", "line 2, column 'a': 'inf' is not a finite number"),
    ("a,b\n1,2\n1,\n", "line 3, column 'b': empty target cell"),
    ("a,a,b\n1,2,3\n", "duplicate column names: a"),
    ("1,2\n3,4\n5\n", "line 3: 1 fields; line 1 has 2"),  # no header: line 1 sets the width
    ("y\n1\n2\n", "no feature columns besides the target 'y'"),
    ("a,b\n1,z\n2,z\n3,z\n4,z\n", "classification needs at least 2 classes"),
    ("a,b\n1,0.5\n", "1 samples are too few to split with a fraction of 0.25"),
]


@pytest.mark.parametrize(("text", "match"), CSV_ERRORS)
def test_csv_errors(tmp_path, text, match):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=f"^{re.escape(path)}: (column 'b': )?{match}"):
        ds.load(path)


def test_csv_file_errors(tmp_path):
    path = _write(tmp_path / "train.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(
        DataError, match=r"train\.csv: column 'label' not found; columns are a, b, c$"
    ):
        ds.load(path, target="label")
    with pytest.raises(DataError, match=r"missing\.csv: no such file$"):
        ds.load(str(tmp_path / "missing.csv"))
    (tmp_path / "latin1.csv").write_bytes("a,b\n1,\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.csv: not a UTF-8 text file"):
        ds.load(str(tmp_path / "latin1.csv"))
    regression = _write(tmp_path / "r.csv", "a,b\n1,1.5\n2,x\n")
    with pytest.raises(DataError, match="line 3, column 'b': 'x' is not a number"):
        ds.load(regression, task="regression")
    with pytest.raises(DataError, match="option target='a' does not apply"):
        ds.load("iris", target="a")


# --------------------------------------------------------------------------------------
# NPZ and predict input
# --------------------------------------------------------------------------------------


def test_npz(tmp_path, rng):
    X = rng.integers(0, 256, (40, 3, 4), dtype=np.uint8)
    y = np.array(["no", "yes"] * 20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    d = ds.load(str(tmp_path / "d.npz"))
    assert d.name == "d.npz" and d.feature_shape == (3, 4) and d.n_features == 12
    assert d.class_names == ["no", "yes"] and d.X_test.shape == (10, 12)
    np.savez(tmp_path / "s.npz", X=X[:30], y=y[:30].astype("S"), X_test=X[30:], y_test=y[30:])
    s = ds.load_npz(tmp_path / "s.npz", dtype="float64")
    np.testing.assert_array_equal(s.X_test, X[30:].reshape(10, 12))
    np.testing.assert_array_equal(s.y_train, (y[:30] == "yes").astype(np.int64))
    np.savez(tmp_path / "r.npz", X=rng.standard_normal((20, 2)), y=rng.standard_normal((20, 3)))
    r = ds.load(str(tmp_path / "r.npz"))
    assert r.task == "regression" and r.n_outputs == 3 and r.y_train.shape == (15, 3)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(DataError, match=r"a\.npz: no array 'y'; arrays are X, labels$"):
        ds.load(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", X=np.zeros((4, 2)), y=np.array([1, None, 2, 3], dtype=object))
    with pytest.raises(DataError, match=r"b\.npz: cannot read array 'y'"):
        ds.load(str(tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", X=np.array([[0.0, np.nan]] * 4), y=np.arange(4) % 2)
    with pytest.raises(
        DataError, match=r"c\.npz: 'X': non-finite value nan at sample 0, feature 1$"
    ):
        ds.load(str(tmp_path / "c.npz"))
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match="same number of samples"):
        ds.load(str(tmp_path / "d.npz"))
    (tmp_path / "e.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"e\.npz: not a valid \.npz"):
        ds.load(str(tmp_path / "e.npz"))
    np.savez(tmp_path / "f.npz", X=np.full((4, 1), 1e300), y=np.arange(4) % 2)
    with pytest.raises(DataError, match="value 1e\\+300 does not fit in float32"):
        ds.load(str(tmp_path / "f.npz"))


def test_load_features(tmp_path, rng):
    path = _write(tmp_path / "p.csv", "a,label,b\n1,x,2\n3,y,4\n")
    np.testing.assert_array_equal(ds.load_features(path, target="label"), [[1, 2], [3, 4]])
    with pytest.raises(DataError, match="line 2, column 'label': 'x' is not a number"):
        ds.load_features(path)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    ds.write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    X = ds.load_features(tmp_path / "images-idx3-ubyte.gz", dtype="float64")
    assert X.shape == (5, 784) and X.dtype == np.float64
    np.savez(tmp_path / "x.npz", X=images)
    np.save(tmp_path / "x.npy", images)
    for name in ("x.npz", "x.npy"):
        np.testing.assert_array_equal(ds.load_features(tmp_path / name), X)
    ds.write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8))
    with pytest.raises(DataError, match="features need 2 or more dimensions"):
        ds.load_features(tmp_path / "labels")
    with pytest.raises(DataError, match=r"x\.npy: cannot train on this file"):
        ds.load(str(tmp_path / "x.npy"))


def test_registry():
    assert ds.get("Fashion_MNIST") is ds.load_fashion_mnist
    assert set(ds.DATASETS) >= {"digits", "iris", "wine", "breast-cancer", "diabetes"}
    with pytest.raises(DataError, match="unknown data set 'nope'; valid names are breast-cancer"):
        ds.get("nope")
    with pytest.raises(DataError, match="unknown data set 'nope'; valid names"):
        ds.load("nope")
    with pytest.raises(DataError, match="fashion-mnist: option n_samples=10 does not apply"):
        ds.load("fashion-mnist", n_samples=10)
    with pytest.raises(ValueError, match="`task` must be"):
        ds.load("iris", task="clustering")


# --------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------


def test_minmax_fits_on_train_only(rng):
    X_train = rng.uniform(-2.0, 3.0, (50, 3))
    X_train[:, 2] = 7.0  # constant feature
    X_test = np.array([[-10.0, 0.0, 7.0], [10.0, 0.0, 8.0]])
    scaler = Scaler("minmax").fit(X_train)
    train = scaler.transform(X_train)
    assert train.dtype == np.float64
    np.testing.assert_allclose(train[:, :2].min(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train[:, :2].max(axis=0), 1.0)
    np.testing.assert_array_equal(train[:, 2], 0.0)  # guarded divisor: no nan/inf
    test = scaler.transform(X_test, dtype="float32")
    assert test.dtype == np.float32
    assert test[0, 0] < 0.0 and test[1, 0] > 1.0  # outside [0, 1]: not refitted
    assert test[1, 2] == 1.0


def test_standard_and_divide(rng):
    X = rng.normal(5.0, 3.0, (200, 2)).astype(np.float32)
    X[:, 1] = 0.1  # constant, and 0.1 is not exact in binary
    Z = Scaler("standard").fit_transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, 0].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z[:, 0].std(), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(Z[:, 1], 0.0)
    pixels = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    np.testing.assert_allclose(Scaler("divide", 255).transform(pixels), [[0, 1], [0.2, 0.4]])
    np.testing.assert_array_equal(Scaler("none").transform(pixels), pixels)


@pytest.mark.parametrize(
    ("kind", "divisor"), [("none", None), ("minmax", None), ("standard", None), ("divide", 16)]
)
def test_scaler_dict_round_trip(rng, kind, divisor):
    X_train, X_test = rng.normal(size=(30, 4)), rng.normal(size=(5, 4))
    scaler = Scaler(kind, divisor).fit(X_train)
    d = json.loads(json.dumps(scaler.to_dict()))
    again = Scaler.from_dict(d)
    assert again.kind == kind and again.divisor == scaler.divisor
    np.testing.assert_array_equal(again.transform(X_test), scaler.transform(X_test))


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({}, "expected a dict with a 'kind'"),
        ({"kind": "log"}, "`kind` must be one of"),
        ({"kind": "divide", "divisor": 0}, "`divisor` must be finite and > 0"),
        (
            {"kind": "minmax", "n_features": 2, "offset": [0.0], "scale": [1.0, 1.0]},
            "'offset' must be 2",
        ),
        ({"kind": "standard", "n_features": 1, "offset": [0.0], "scale": [0.0]}, "'scale' values"),
    ],
)
def test_scaler_from_dict_rejects(d, match):
    with pytest.raises(DataError, match=match):
        Scaler.from_dict(d)


def test_scaler_misuse(rng):
    with pytest.raises(ValueError, match="not fitted"):
        Scaler("minmax").transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="has 3 features; this scaler was fitted on 2"):
        Scaler().fit(np.ones((4, 2))).transform(np.ones((1, 3)))
    with pytest.raises(ValueError, match="divisor"):
        Scaler("divide")
    with pytest.raises(ValueError, match="NaN"):
        Scaler().fit(np.array([[np.nan]]))


def test_default_scaler():
    assert (ds.default_scaler("digits").kind, ds.default_scaler("digits").divisor) == (
        "divide",
        16.0,
    )
    assert ds.default_scaler("mnist").divisor == 255.0
    assert ds.default_scaler("fashion-mnist").divisor == 255.0
    assert ds.default_scaler("iris").kind == "standard"
    assert ds.default_scaler("mine.csv").kind == "standard"
    assert ds.default_scaler("digits").offset is None  # unfitted


def test_one_hot():
    Y = ds.one_hot(np.array([2, 0, 1, 2]), 3)
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, np.eye(3)[[2, 0, 1, 2]])
    assert ds.one_hot(np.array([1]), 2, dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match=r"values must be in 0..2; got 0..3"):
        ds.one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="integer class indices"):
        ds.one_hot(np.array([0.5]), 3)


def test_train_val_split(rng):
    X, y = np.arange(100.0).reshape(50, 2), np.arange(50) % 5
    X_tr, _, X_val, y_val = ds.train_val_split(X, y, 0.2, np.random.default_rng(7))
    assert X_tr.shape == (40, 2) and X_val.shape == (10, 2)
    assert set(X_tr[:, 0]).isdisjoint(X_val[:, 0])
    assert sorted(np.concatenate([X_tr[:, 0], X_val[:, 0]])) == list(X[:, 0])
    np.testing.assert_array_equal(y_val, (X_val[:, 0] // 2) % 5)
    again = ds.train_val_split(X, y, 0.2, np.random.default_rng(7))
    np.testing.assert_array_equal(again[2], X_val)
    strat = ds.train_val_split(X, y, 0.2, rng, stratify=True)
    assert np.bincount(strat[3]).tolist() == [2] * 5
    with pytest.raises(ValueError, match="val_fraction"):
        ds.train_val_split(X, y, 0.0, rng)
    with pytest.raises(TypeError, match="Generator"):
        ds.train_val_split(X, y, 0.2, 7)
