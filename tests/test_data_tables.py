"""deltaprop.data.parquet and deltaprop.data.frame: named columns from Parquet and pandas."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from deltaprop import data
from deltaprop.data import parquet
from deltaprop.errors import DataError, DeltapropError
from deltaprop.network import Network

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(16)
    return pd.DataFrame({
        "a": rng.standard_normal(40),
        "b": rng.integers(0, 5, 40),
        "flag": np.arange(40) % 3 == 0,
        "kind": np.where(np.arange(40) % 2, "cat", "dog"),
    })


def _rows(d: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([d.X_train, d.X_test]), np.concatenate([d.y_train, d.y_test])


# ---------------------------------------------------------------------------- Parquet


def test_parquet_round_trip_with_names_and_text_labels(tmp_path, frame):
    frame.to_parquet(tmp_path / "t.parquet")
    for target in ("kind", 3, "-1", None):
        d = data.load(str(tmp_path / "t.parquet"), target=target)
        assert d.feature_names == ["a", "b", "flag"] and d.class_names == ["cat", "dog"]
        X, y = _rows(d)
        order = np.argsort(X[:, 0])
        want = frame[["a", "b", "flag"]].to_numpy(dtype=np.float32)
        np.testing.assert_array_equal(X[order], want[np.argsort(want[:, 0])])
        np.testing.assert_array_equal(y[order], (frame["kind"] == "dog").to_numpy()[
            np.argsort(want[:, 0])])


def test_parquet_index_columns_are_not_features(tmp_path, frame):
    frame.set_index(pd.Index([f"r{i}" for i in range(40)])).to_parquet(tmp_path / "i.parquet")
    assert "__index_level_0__" in pq.ParquetFile(tmp_path / "i.parquet").schema_arrow.names
    d = data.load(str(tmp_path / "i.parquet"))  # the default target is the last data column
    assert d.feature_names == ["a", "b", "flag"] and d.class_names == ["cat", "dog"]


def test_parquet_features_by_name(tmp_path, frame):
    frame.to_parquet(tmp_path / "t.parquet")
    X, names = data.read_features(str(tmp_path / "t.parquet"), feature_names=["b", "a"])
    assert names == ["b", "a"]
    np.testing.assert_array_equal(X, frame[["b", "a"]].to_numpy(dtype=np.float32))
    X, names = data.read_features(str(tmp_path / "t.parquet"), target="kind")
    assert names == ["a", "b", "flag"]
    with pytest.raises(DataError,
                       match=r"t\.parquet: no column 'c'; the features wanted are a, c$"):
        data.read_features(str(tmp_path / "t.parquet"), feature_names=["a", "c"])


def test_parquet_bad_inputs_one_line(tmp_path):
    cases = {
        "list": (pa.table({"x": [1.0, 2.0], "tags": [[1, 2], [3]], "y": [0, 1]}),
                 "column 'tags' is nested (list<element: int64>); deltaprop reads flat columns "
                 "of numbers (and a column of labels)"),
        "struct": (pa.table({"x": [1.0, 2.0], "p": [{"u": 1}, {"u": 2}], "y": [0, 1]}),
                   "column 'p' is nested (struct<u: int64>); deltaprop reads flat columns of "
                   "numbers (and a column of labels)"),
        "null": (pa.table({"x": [1.0, None, 3.0, 4.0], "y": [0, 1, 0, 1]}),
                 "row 1, column 'x': missing value (null)"),
        "nan": (pa.table({"x": [1.0, 2.0, float("nan"), 4.0], "y": [0, 1, 0, 1]}),
                "row 2, column 'x': non-finite value nan"),
        "text": (pa.table({"x": ["a", "b"], "y": [0, 1]}),
                 "column 'x' holds string; a feature must be numbers"),
        "huge": (pa.table({"x": [1e300, 1.0], "y": [0, 1]}),
                 "row 0, column 'x': value 1e+300 does not fit in float32"),
    }
    for name, (table, message) in cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        with pytest.raises(DataError) as caught:
            data.load(str(path))
        assert str(caught.value) == f"{path}: {message}", name
    pq.write_table(cases["null"][0], tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t\.parquet: column 'label' not found; columns are x, y$"):
        data.load(str(tmp_path / "t.parquet"), target="label")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"junk\.parquet: not a valid Parquet file"):
        data.load(str(tmp_path / "junk.parquet"))
    with pytest.raises(DataError, match=r"gone\.parquet: no such file$"):
        data.load(str(tmp_path / "gone.parquet"))


def test_parquet_without_pyarrow_is_a_one_line_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(parquet.ParquetUnavailableError) as caught:
        data.load(str(tmp_path / "any.parquet"))
    assert isinstance(caught.value, DeltapropError) and isinstance(caught.value, ImportError)
    assert str(caught.value) == (f"{tmp_path / 'any.parquet'}: reading Parquet needs pyarrow; "
                                 "install it with: pip install 'deltaprop[parquet]'")


# ---------------------------------------------------------------------------- DataFrames


def test_fit_takes_a_dataframe_and_series_as_numpy_would(frame):
    """A Model fits (df, series) as it fits the arrays, and records the column names."""
    from deltaprop.model import Model

    X = frame[["a", "b", "flag"]].astype(float)
    y = frame["kind"]
    a = Model(Network([3, 4, 2], seed=0), scaler="none")
    b = Model(Network([3, 4, 2], seed=0), scaler="none")
    a.fit(X, y, epochs=3, batch_size=8, verbose=0)
    b.fit(X.to_numpy(), y.to_numpy(), epochs=3, batch_size=8, verbose=0)
    for (_, p), (_, q) in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(a.predict(X), b.predict(X.to_numpy()))
    assert set(a.predict(X)) <= {"cat", "dog"}
    assert a.feature_names == ["a", "b", "flag"] and b.feature_names is None
    # columns in another order, and the target still in the frame: matched by name
    np.testing.assert_array_equal(a.predict(frame[["kind", "flag", "b", "a"]]), a.predict(X))


def test_features_from_frame(frame):
    X, names = data.features_from_frame(frame, target="kind")
    assert names == ["a", "b", "flag"] and X.dtype == np.float32
    np.testing.assert_array_equal(X, frame[names].to_numpy(dtype=np.float32))
    X, names = data.features_from_frame(frame, feature_names=["flag", "a"], dtype="float64")
    assert names == ["flag", "a"]
    np.testing.assert_array_equal(X, frame[["flag", "a"]].to_numpy(dtype=np.float64))
    X, names = data.features_from_frame(frame["a"])  # a Series is one named column
    assert names == ["a"] and X.shape == (40, 1)
    X2, names2 = data.read_features(frame, feature_names=["a"])
    assert names2 == ["a"]
    np.testing.assert_array_equal(X2, X)


def test_frame_bad_inputs_name_row_and_column(frame):
    holes = frame.copy()
    holes.loc[5, "a"] = np.nan
    with pytest.raises(DataError, match=r"^DataFrame: row 5 \(index 5\), column 'a': missing "
                       r"value \(NaN\)$"):
        data.features_from_frame(holes, target="kind")
    nullable = frame[["b"]].astype("Int64")
    nullable.index = [f"r{i}" for i in range(40)]
    nullable.iloc[3, 0] = pd.NA
    with pytest.raises(DataError, match=r"^DataFrame: row 3 \(index 'r3'\), column 'b': missing"):
        data.features_from_frame(nullable)
    with pytest.raises(DataError, match=r"^DataFrame: column 'kind' has dtype \w+; features "
                       r"must be numbers$"):
        data.features_from_frame(frame)
    with pytest.raises(DataError,
                       match=r"^DataFrame: no column 'z'; the features wanted are a, z$"):
        data.features_from_frame(frame, feature_names=["a", "z"])
    twice = pd.DataFrame(np.zeros((2, 2)), columns=["a", "a"])
    with pytest.raises(DataError, match=r"^DataFrame: duplicate column names: a$"):
        data.features_from_frame(twice)
    with pytest.raises(TypeError, match="expected a pandas DataFrame or Series; got ndarray"):
        data.features_from_frame(np.zeros((2, 2)))


def test_load_frame_keeps_names_and_labels(frame):
    d = data.load(frame, target="kind", seed=3)
    assert d.name == "DataFrame" and d.feature_names == ["a", "b", "flag"]
    assert d.class_names == ["cat", "dog"] and len(d.X_test) == 10
    with pytest.raises(DataError, match=r"^DataFrame: column 'nope' not found; columns are a, "
                       r"b, flag, kind$"):
        data.load(frame, target="nope")
    with pytest.raises(DataError, match="option n_samples=5 does not apply"):
        data.load(frame, n_samples=5)
