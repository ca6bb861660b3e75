"""deltaprop.data.delimited: CSV/TSV through NumPy's parser — headers, targets, labels, errors.

The reference values are computed here with Python's own csv module and float(), never by
the reader under test.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

from deltaprop import data
from deltaprop.data import delimited
from deltaprop.errors import DataError
from deltaprop.preprocessing import split_indices


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return str(path)


def _reference(text: str, delimiter: str = ",") -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]


def _all_rows(d: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([d.X_train, d.X_test]), np.concatenate([d.y_train, d.y_test])


ROWS = [f"{i % 3},{i * 0.5},{(i * 7) % 11}" for i in range(30)]  # label, a, b


@pytest.fixture
def small_chunks(monkeypatch):
    """NaN and ±inf checked two rows at a time, so the check's blocks are many."""
    monkeypatch.setattr(delimited, "_CHECK_ROWS", 2)


def test_header_and_no_header_read_the_same(tmp_path):
    with_header = _write(tmp_path, "h.csv", "label,a,b\n" + "\n".join(ROWS) + "\n")
    without = _write(tmp_path, "n.csv", "\n".join(ROWS) + "\n")
    h = data.load(with_header, target="label")
    assert h.feature_names == ["a", "b"] and h.class_names == ["0", "1", "2"]
    for target in ("0", 0, -3, "-3"):
        n = data.load(without, target=target)
        assert n.feature_names is None and n.class_names == h.class_names
        for got, want in zip(_all_rows(n), _all_rows(h), strict=True):
            np.testing.assert_array_equal(got, want)
    X, y = _all_rows(h)
    rows = {(float(r[1]), float(r[2])): int(r[0]) for r in _reference("\n".join(ROWS))}
    assert {(float(a), float(b)): int(label) for (a, b), label in zip(X, y, strict=True)} == rows
    # the default target is the last column, with or without a header
    assert data.load(without).n_features == 2
    assert data.load(with_header).feature_names == ["label", "a"]


def test_header_option_forces_the_choice(tmp_path):
    numbers = _write(tmp_path, "numbers.csv", "1,2,3\n" + "\n".join(ROWS) + "\n")
    forced = data.load(numbers, header=True, target="1")  # the first line names columns
    assert forced.feature_names == ["2", "3"] and len(forced.y_train) + len(forced.y_test) == 30
    named = _write(tmp_path, "named.csv", "label,a,b\n" + "\n".join(ROWS) + "\n")
    with pytest.raises(DataError,
                       match=r"named\.csv: line 1, column index 1: 'a' is not a number$"):
        data.load(named, header=False, target=0)
    with pytest.raises(ValueError, match="`header` must be 'auto', True or False"):
        data.load(named, header="yes")


def test_target_errors_name_the_columns(tmp_path):
    with_header = _write(tmp_path, "h.csv", "label,a,b\n" + "\n".join(ROWS) + "\n")
    without = _write(tmp_path, "n.csv", "\n".join(ROWS) + "\n")
    with pytest.raises(DataError, match=r"n\.csv: column 'label' not found; the file has no "
                       r"header row, so choose the column by its position 0\.\.2$"):
        data.load(without, target="label")
    for target in (3, "-4"):
        with pytest.raises(DataError, match=r"h\.csv: column -?\d not found; the file has 3 "
                           r"columns \(positions 0\.\.2, or -1 for the last\)$"):
            data.load(with_header, target=target)
    wide = _write(tmp_path, "wide.csv", ",".join(f"c{j}" for j in range(40)) + "\n"
                  + ",".join("1" for _ in range(40)) + "\n")
    with pytest.raises(DataError, match=r"column 'nope' not found; columns are c0, c1, .*, "
                       r"…, c39 \(40 columns\)$"):
        data.load(wide, target="nope")


def test_text_labels_quoted_spaced_and_after_numbers(tmp_path):
    cat, dog = " cat ", '"dog, big"'
    lines = ['"x 1",x2,label'] + [f"{i},{i % 4},{cat if i % 2 else dog}" for i in range(12)]
    d = data.load(_write(tmp_path, "q.csv", "\n".join(lines) + "\n"))
    assert d.feature_names == ["x 1", "x2"] and d.class_names == ["cat", "dog, big"]
    X, y = _all_rows(d)
    np.testing.assert_array_equal(y, 1 - X[:, 0] % 2)  # odd rows are cats → index 0
    # The first labels are numbers, a later one is not: the column holds text labels.
    late = ["a,b,label"] + [f"{i},{i},{'bird' if i == 11 else i % 2}" for i in range(12)]
    d = data.load(_write(tmp_path, "late.csv", "\n".join(late) + "\n"), test_size=0.5)
    assert d.class_names == ["0", "1", "bird"]


def test_tsv_and_explicit_delimiter(tmp_path):
    text = "label\ta\tb\n" + "\n".join(r.replace(",", "\t") for r in ROWS) + "\n"
    tsv = data.load(_write(tmp_path, "t.tsv", text), target="label")
    csv_ = data.load(_write(tmp_path, "c.csv", "label,a,b\n" + "\n".join(ROWS)), target="label")
    for got, want in zip(_all_rows(tsv), _all_rows(csv_), strict=True):
        np.testing.assert_array_equal(got, want)
    semicolons = _write(tmp_path, "s.csv", text.replace("\t", ";"))
    d = data.load_csv(semicolons, target="label", delimiter=";")
    np.testing.assert_array_equal(_all_rows(d)[0], _all_rows(csv_)[0])


def test_blank_lines_and_line_ends(tmp_path, small_chunks):
    rows = [f"{i},{i / 8},{i % 2}" for i in range(23)]
    pieces = []
    for i, row in enumerate(rows):  # blank lines here and there, CRLF on some lines
        pieces.append(row + ("\r\n" if i % 3 else "\n"))
        if i % 4 == 1:
            pieces.append("\n" * (i % 3 + 1))
    text = "x,y,label\n\n" + "".join(pieces) + "\n\n"
    d = data.load(_write(tmp_path, "b.csv", text), target="label", dtype="float64")
    X, y = _all_rows(d)
    want = np.array([[float(r[0]), float(r[1])] for r in _reference(text)[1:]])
    order = np.argsort(X[:, 0])
    np.testing.assert_array_equal(X[order], want)
    np.testing.assert_array_equal(y[order], [int(r[2]) for r in _reference(text)[1:]])


@pytest.mark.parametrize(("row", "bad", "message"), [
    ("32,oops,0", 33, "line 36, column 'b': 'oops' is not a number"),
    ("32,inf,0", 33, "line 36, column 'b': 'inf' is not a finite number"),
    ("32,1", 33, "line 36: 2 fields; the header has 3"),
    ("32,2,", 38, "line 41, column 'label': empty target cell"),
])
def test_a_bad_cell_deep_in_the_file_names_its_line(tmp_path, small_chunks, row, bad, message):
    lines = ["a,b,label"] + [f"{i},{i},{i % 2}" for i in range(40)]
    lines[bad] = row
    text = "\n".join(lines[:10]) + "\n\n\n" + "\n".join(lines[10:]) + "\n"  # +2 blank lines
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=f"^{re.escape(path)}: {re.escape(message)}$"):
        data.load(path)


BAD = [
    # text, the message after "PATH: "
    ("a,b,c\n1,2,0\n3,4,1\n5,6\n", "line 4: 2 fields; the header has 3"),
    ("1,2,0\n3,4,1\n5,6,1,7\n", "line 3: 4 fields; line 1 has 3"),
    ("a,b,c\n1,2,0\n3, x ,1\n", "line 3, column 'b': 'x' is not a number"),
    ("a,b,c\n1,2,0\n3,1_0,1\n", "line 3, column 'b': '1_0' is not a number"),
    ("a,b,c\n1,2,0\n3,,1\n", "line 3, column 'b': empty cell"),
    ("a,b,c\n1,nan,0\n3,4,1\n", "line 2, column 'b': 'nan' is not a finite number"),
    ("a,b,c\n1,2,0\n3,1e39,1\n", "line 3, column 'b': '1e39' does not fit in float32"),
    ("a,b,c\n1,2,0\n3,4,\n", "line 3, column 'c': empty target cell"),
    ('a,b,c\n1,2,0\n3,4,""\n', "line 3, column 'c': empty target cell"),
    ("", "empty file; expected a header row or data"),
    ("\n\n\r\n", "empty file; expected a header row or data"),
    ("a,b,c\n\n", "no data rows after the header"),
    ("a,,c\n1,2,3\n", "column 2 has an empty name in the header"),
    ("label\n1\n2\n", "no feature columns besides the target 'label'"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_files_one_line_naming_file_line_and_column(tmp_path, text, message):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=f"^{re.escape(path)}: {re.escape(message)}$"):
        data.load(path)


def test_regression_target_must_be_numbers(tmp_path):
    path = _write(tmp_path, "r.csv", "a,b\n1,1.5\n2,x\n3,2.5\n")
    with pytest.raises(DataError, match=r"line 3, column 'b': 'x' is not a number$"):
        data.load(path, task="regression")


def test_labels_beyond_float32_precision_stay_exact(tmp_path):
    # 2**24 + 1 and 2**24 + 3 are not float32 numbers; the target is parsed as float64.
    rows = [f"{i},{16777217 + 2 * (i % 2)}" for i in range(8)]
    d = data.load(_write(tmp_path, "big.csv", "a,id\n" + "\n".join(rows)),
                  task="classification")
    assert d.class_names == ["16777217", "16777219"]


def test_float32_and_float64_values(tmp_path):
    path = _write(tmp_path, "v.csv", "a,b,label\n0.1,-2.5e-3,0\n1e-40,3.4e38,1\n7,8,0\n9,10,1\n")
    want = np.array([[0.1, -2.5e-3], [1e-40, 3.4e38], [7, 8], [9, 10]])
    for dtype in ("float32", "float64"):
        X, _ = _all_rows(data.load(path, dtype=dtype, test_size=0.5))
        assert X.dtype == dtype
        order = np.argsort(X[:, 1])
        np.testing.assert_array_equal(X[order], want[np.argsort(want[:, 1])].astype(dtype))


def test_split_takes_the_same_rows_as_a_random_split(tmp_path):
    """split_in_place moves rows inside one array; the rows it picks for the test set are
    those of preprocessing.split_indices with the same seed (the other loaders' split)."""
    labels = [i % 4 for i in range(103)]
    lines = ["row,label"] + [f"{i},{label}" for i, label in enumerate(labels)]
    d = data.load(_write(tmp_path, "s.csv", "\n".join(lines)), seed=7, test_size=0.3)
    train, test = split_indices(np.array(labels), 0.3, np.random.default_rng(7), stratify=True)
    np.testing.assert_array_equal(d.X_test[:, 0], np.sort(test))  # file order within a part
    np.testing.assert_array_equal(d.X_train[:, 0], np.sort(train))
    np.testing.assert_array_equal(d.y_test, np.array(labels)[np.sort(test)])


def test_read_features_by_name_ignores_other_columns(tmp_path):
    path = _write(tmp_path, "p.csv", "id,b,label,a\nx1,2,cat,1\nx2,4,dog,3\n")
    X, names = data.read_features(path, feature_names=["a", "b"])
    assert names == ["a", "b"]
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    with pytest.raises(DataError, match=r"p\.csv: no column 'c' \(and 1 more\); the features "
                       r"wanted are a, c, d$"):
        data.read_features(path, feature_names=["a", "c", "d"])
    # without names: every column but the target; a text column is then an error
    labelled = _write(tmp_path, "l.csv", "b,label,a\n2,cat,1\n4,dog,3\n")
    X, names = data.read_features(labelled, target="label")
    assert names == ["b", "a"]
    np.testing.assert_array_equal(X, [[2, 1], [4, 3]])
    with pytest.raises(DataError, match=r"line 2, column 'label': 'cat' is not a number$"):
        data.load_features(labelled)
    with pytest.raises(DataError, match=r"column 'label': 'cat' is not a number$"):
        data.read_features(labelled, target="y")  # a target the file lacks: nothing dropped
    # a headerless file is read by position
    headerless = _write(tmp_path, "n.csv", "1,2,0\n3,4,1\n")
    X, names = data.read_features(headerless, target=-1)
    assert names is None
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    X, names = data.read_features(headerless, feature_names=["a", "b"])  # no names to match
    assert names is None and X.shape == (2, 3)


def test_the_command_trains_alike_with_or_without_a_header(tmp_path, capsys):
    """`deltaprop train` on the same rows with a header (--target label) and without one
    (--target 0): the same data, so the same model and test metrics."""
    import json

    from conftest import run_cli

    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    rows = [f"{label},{a:.6f},{b:.6f},{c:.6f}" for label, (a, b, c) in zip(labels, X, strict=True)]
    named = _write(tmp_path, "named.csv", "label,a,b,c\n" + "\n".join(rows) + "\n")
    bare = _write(tmp_path, "bare.csv", "\n".join(rows) + "\n")
    results = []
    for path, target in ((named, "label"), (bare, "0")):
        status, out, err = run_cli(["train", "--data", path, "--target", target, "--epochs", "3",
                                    "--hidden", "4", "--quiet", "--json",
                                    "--out", str(tmp_path / "m.safetensors")], capsys)
        assert status == 0, err
        results.append(json.loads(out)["test"])
    assert results[0] == results[1]


@pytest.mark.parametrize(("text", "names", "n_rows"), [
    ("label,a,b\nyes,1,2\nno,3,4\nno,5,6\nyes,7,8\n", ["a", "b"], 4),  # names over numbers
    ("yes,1,2\nno,3,4\nno,5,6\nyes,7,8\n", None, 4),  # a text label over a text label: data
    ("0,1,2\n1,3,4\n1,5,6\n0,7,8\n", None, 4),  # numbers over numbers: data
    ("label,a,b\n", ["a", "b"], 0),  # one line, not all numbers: a header (and no data)
])
def test_header_detection_compares_the_first_two_rows(tmp_path, text, names, n_rows):
    path = _write(tmp_path, "h.csv", text)
    if n_rows == 0:
        with pytest.raises(DataError, match="no data rows after the header"):
            data.load(path, target=0)
        return
    d = data.load(path, target=0, test_size=0.5)
    assert d.feature_names == names and len(d.X_train) + len(d.X_test) == n_rows
