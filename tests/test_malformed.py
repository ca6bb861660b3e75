"""Bad input through the real command: one line ``error: <file>: …``, exit 1, no traceback.

The corpus is generated here from one good model (trained by the CLI on iris) and good IDX
and CSV files: truncations, bit flips, foreign files, metadata that contradicts the
tensors. Every case runs through ``deltaprop.cli.main`` in-process (a handful also as a real
subprocess), and hypothesis throws random and mutated bytes at the two binary loaders.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli as run
from deltaprop import cli, datasets, io

SRC = str(Path(__file__).resolve().parents[1] / "src")




def assert_one_line_error(status: int, err: str, name: str, expected_status: int = 1) -> None:
    assert status == expected_status, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert name in lines[0], f"{name!r} not named in {lines[0]!r}"


# ------------------------------------------------------------------ the good inputs
@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A model trained by the CLI on iris (4 features, 3 classes) and a CSV to predict on."""
    folder = tmp_path_factory.mktemp("good")
    model = folder / "model.safetensors"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", "iris", "--hidden", "5", "--epochs", "2", "--quiet",
                  "--out", str(model)])
    assert exit_info.value.code in (0, None)
    features = folder / "features.csv"
    features.write_text("a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    from safetensors.numpy import load_file

    return {
        "folder": folder,
        "model": model,
        "bytes": model.read_bytes(),
        "tensors": load_file(model),
        "doc": io.read_metadata(model),
        "features": features,
    }


def _header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def _flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


def _model_bytes(tensors: dict[str, np.ndarray], doc: dict[str, Any] | None,
                 checksum: bool = True) -> bytes:
    """A safetensors file of ``tensors`` with ``doc`` as deltaprop metadata.

    With ``checksum`` the doc's ``data_sha256`` is recomputed for these tensors, so the
    error seen is the one the case is about and not the checksum's.
    """
    from safetensors.numpy import save

    if doc is None:
        return save(tensors)
    doc = json.loads(json.dumps(doc))
    if checksum:
        doc["data_sha256"] = hashlib.sha256(io._data_region(save(tensors))).hexdigest()
    return save(tensors, metadata={"deltaprop": json.dumps(doc)})


def _edited(doc: dict[str, Any], edit: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    edit(doc)
    return doc


def _model_cases(good: dict[str, Any]) -> dict[str, tuple[bytes, str]]:
    """name → (file contents, a fragment the message must contain)."""
    data, tensors, doc = good["bytes"], good["tensors"], good["doc"]
    n = _header_length(data)
    size = len(data)
    w0 = tensors["0.weight"]
    cases: dict[str, tuple[bytes, str]] = {
        # truncations: nothing, inside the length, just the length, inside the header,
        # header without data, inside the data, one byte short
        "trunc-0": (b"", "not a safetensors"),
        "trunc-4": (data[:4], "not a safetensors"),
        "trunc-8": (data[:8], "bad header length"),
        "trunc-header": (data[: 8 + n // 2], "bad header length"),
        "trunc-data-0": (data[: 8 + n], ""),
        "trunc-data-half": (data[: 8 + n + (size - 8 - n) // 2], ""),
        "trunc-last-byte": (data[:-1], ""),
        # bit flips: the header length, the JSON, a tensor's dtype tag, the data
        "flip-length": (_flip(data, 4), "bad header length"),
        "flip-json-brace": (_flip(data, 8, 2), "not JSON"),
        "flip-data-first": (_flip(data, 8 + n), "checksum"),
        "flip-data-last": (_flip(data, size - 1, 7), "checksum"),
        "flip-data-mantissa": (_flip(data, 8 + n + (size - 8 - n) // 2, 0), "checksum"),
        "flip-dtype-tag": (data.replace(b'"F32"', b'"F16"', 1), ""),
        # foreign files
        "text": (b"hello, this is not a model\n" * 4, "not a safetensors"),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a safetensors"),
        "json": (json.dumps(doc).encode(), "not a safetensors"),
        "plain-safetensors": (_model_bytes(tensors, None), "not a deltaprop model"),
        "other-metadata": (
            __import__("safetensors.numpy").numpy.save(tensors, metadata={"x": "1"}),
            "not a deltaprop model",
        ),
        "metadata-not-json": (
            __import__("safetensors.numpy").numpy.save(tensors, metadata={"deltaprop": "{"}),
            "not JSON",
        ),
        # metadata that contradicts the tensors or the format
        "future-version": (
            _model_bytes(tensors, _edited(doc, lambda d: d.update(format_version=99))),
            "format version 99",
        ),
        "version-string": (
            _model_bytes(tensors, _edited(doc, lambda d: d.update(format_version="1"))),
            "bad format version",
        ),
        "sizes": (
            _model_bytes(tensors, _edited(doc, lambda d: d["config"].update(sizes=[4, 6, 3]))),
            "shape",
        ),
        "dtype": (
            _model_bytes(tensors, _edited(doc, lambda d: d["config"].update(dtype="float64"))),
            "metadata says float64",
        ),
        "tensor-float16": (
            _model_bytes(tensors | {"0.weight": w0.astype(np.float16)}, doc),
            "float16",
        ),
        "bias-mode": (
            _model_bytes(tensors, _edited(doc, lambda d: d["config"].update(bias="none"))),
            "unexpected tensor",
        ),
        "missing-tensor": (
            _model_bytes({k: v for k, v in tensors.items() if k != "2.weight"}, doc),
            "'2.weight' is missing",
        ),
        "extra-tensor": (
            _model_bytes(tensors | {"4.weight": np.zeros((2, 2), np.float32)}, doc),
            "unexpected tensor '4.weight'",
        ),
        "nan-weight": (
            _model_bytes(tensors | {"0.weight": np.where(w0 == w0.flat[0], np.nan, w0)}, doc),
            "NaN",
        ),
        "inf-bias": (
            _model_bytes(tensors | {"2.bias": np.full_like(tensors["2.bias"], np.inf)}, doc),
            "NaN or inf",
        ),
        "too-many-classes": (
            _model_bytes(tensors, _edited(doc, lambda d: d["preprocessing"].update(
                labels={"kind": "classes", "classes": list("abcd")}))),
            "class labels",
        ),
        "classes-not-list": (
            _model_bytes(tensors, _edited(doc, lambda d: d["preprocessing"].update(
                labels={"kind": "classes", "classes": "abc"}))),
            "labels",
        ),
        "bad-activation": (
            _model_bytes(tensors, _edited(doc, lambda d: d["config"].update(output="nope"))),
            "no valid network",
        ),
        "config-not-dict": (
            _model_bytes(tensors, _edited(doc, lambda d: d.update(config=[1, 2]))),
            "no network configuration",
        ),
        "preprocessing": (
            _model_bytes(tensors, _edited(
                doc, lambda d: d["preprocessing"].update(input={"kind": "bogus"}))),
            "preprocessing",
        ),
    }
    return cases


MODEL_CASES = [
    "trunc-0", "trunc-4", "trunc-8", "trunc-header", "trunc-data-0", "trunc-data-half",
    "trunc-last-byte", "flip-length", "flip-json-brace", "flip-data-first", "flip-data-last",
    "flip-data-mantissa", "flip-dtype-tag", "text", "png", "json", "plain-safetensors",
    "other-metadata", "metadata-not-json", "future-version", "version-string", "sizes",
    "dtype", "tensor-float16", "bias-mode", "missing-tensor", "extra-tensor", "nan-weight",
    "inf-bias", "too-many-classes", "classes-not-list", "bad-activation", "config-not-dict",
    "preprocessing",
]


def _command(kind: str, model: Path, good: dict[str, Any]) -> list[str]:
    if kind == "info":
        return ["info", str(model)]
    if kind == "evaluate":
        return ["evaluate", str(model), "--data", "iris"]
    return ["predict", str(model), str(good["features"])]


def test_model_corpus_is_complete(good: dict[str, Any]) -> None:
    assert sorted(_model_cases(good)) == sorted(MODEL_CASES)


@pytest.mark.parametrize("command", ["info", "evaluate", "predict"])
@pytest.mark.parametrize("case", MODEL_CASES)
def test_malformed_model(good: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         case: str, command: str) -> None:
    contents, fragment = _model_cases(good)[case]
    model = tmp_path / f"{case}.safetensors"
    model.write_bytes(contents)
    status, out, err = run(_command(command, model, good), capsys)
    assert_one_line_error(status, err, str(model))
    assert fragment in err
    assert out == ""


@pytest.mark.parametrize("command", ["info", "evaluate", "predict"])
def test_missing_model_file(good: dict[str, Any], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str], command: str) -> None:
    model = tmp_path / "absent.safetensors"
    status, _, err = run(_command(command, model, good), capsys)
    assert_one_line_error(status, err, str(model))
    assert "no such file" in err


@pytest.mark.parametrize("command", ["info", "evaluate", "predict"])
def test_folder_as_model(good: dict[str, Any], tmp_path: Path,
                         capsys: pytest.CaptureFixture[str], command: str) -> None:
    status, _, err = run(_command(command, tmp_path, good), capsys)
    assert status in (1, 2), err  # click may refuse a folder for a dir_okay=False path (2)
    assert_one_line_error(status, err, str(tmp_path), expected_status=status)


def test_good_model_passes_every_command(good: dict[str, Any],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus's baseline: the unmodified file works, so each failure is the edit's."""
    for command in ("info", "evaluate", "predict"):
        status, out, err = run(_command(command, good["model"], good), capsys)
        assert status == 0, err
        assert out


def test_model_that_does_not_fit_the_data(good: dict[str, Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["evaluate", str(good["model"]), "--data", "digits"], capsys)
    assert_one_line_error(status, err, str(good["model"]))
    assert "64 features" in err and "takes 4" in err


# ------------------------------------------------------------------ IDX files
def _idx(array: np.ndarray) -> bytes:
    """A raw IDX file of ``array`` (built here, independently of datasets.write_idx)."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    header = bytes([0, 0, codes[array.dtype.str[1:]], array.ndim])
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _idx_cases() -> dict[str, tuple[bytes, str]]:
    X = np.arange(24, dtype=np.float32).reshape(6, 4) / 24
    good = _idx(X)
    gz = gzip.compress(good, mtime=0)
    return {
        "idx-bad-magic": (b"\x08\x03" + good[2:], "not an IDX file"),
        "idx-bad-dtype": (good[:2] + b"\x0a" + good[3:], "unknown IDX data type"),
        "idx-zero-dims": (good[:3] + b"\x00" + good[4:], "dimensions"),
        "idx-too-short": (good[:3], "too short"),
        "idx-truncated-header": (good[:9], "truncated IDX header"),
        "idx-truncated-data": (good[:-5], "the file holds"),
        "idx-extra-bytes": (good + b"\x00\x00\x00\x00", "the file holds"),
        "idx-huge-dims": (good[:4] + struct.pack(">II", 2**31, 2**31) + good[12:], "needs"),
        "idx-truncated-gzip": (gz[: len(gz) // 2], "gzip"),
        "idx-corrupt-gzip": (gz[:10] + bytes(b ^ 0xFF for b in gz[10:20]) + gz[20:], "gzip"),
        "idx-gzip-extra": (gzip.compress(good + b"\x01", mtime=0), "holds"),
        "idx-wrong-width": (_idx(np.zeros((3, 5), np.float32)), "5 features"),
    }


IDX_CASES = sorted(_idx_cases())


@pytest.mark.parametrize("case", IDX_CASES)
def test_malformed_idx_to_predict(good: dict[str, Any], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], case: str) -> None:
    contents, fragment = _idx_cases()[case]
    path = tmp_path / f"{case}-idx3-ubyte"
    path.write_bytes(contents)
    status, out, err = run(["predict", str(good["model"]), str(path)], capsys)
    assert_one_line_error(status, err, str(path))
    assert fragment in err
    assert out == ""


def _idx_folder(folder: Path) -> None:
    """The four MNIST-style files of a tiny valid data set."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for split, n in (("train", 20), ("t10k", 10)):
        (folder / f"{split}-images-idx3-ubyte").write_bytes(
            _idx(rng.integers(0, 256, (n, 2, 2)).astype(np.uint8)))
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(
            _idx(np.arange(n, dtype=np.uint8) % 2))


@pytest.mark.parametrize("case", ["idx-bad-magic", "idx-truncated-data", "idx-extra-bytes",
                                  "idx-bad-dtype"])
def test_malformed_idx_folder_to_train(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       case: str) -> None:
    folder = tmp_path / "idx"
    _idx_folder(folder)
    bad = folder / "train-images-idx3-ubyte"
    contents = bytearray(bad.read_bytes())
    if case == "idx-bad-magic":
        contents[:2] = b"\x01\x02"
    elif case == "idx-truncated-data":
        del contents[-3:]
    elif case == "idx-extra-bytes":
        contents += b"\x00"
    else:
        contents[2] = 0x07
    bad.write_bytes(bytes(contents))
    out_model = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--data", str(folder), "--epochs", "1", "--quiet",
                          "--out", str(out_model)], capsys)
    assert_one_line_error(status, err, str(bad))
    assert not out_model.exists()


def test_good_idx_folder_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "idx"
    _idx_folder(folder)
    status, _, err = run(["train", "--data", str(folder), "--epochs", "1", "--quiet",
                          "--out", str(tmp_path / "m.safetensors")], capsys)
    assert status == 0, err


# ------------------------------------------------------------------ CSV and NPZ files
CSV_CASES: dict[str, tuple[bytes, list[str], str]] = {
    # name → (contents, extra options for train, fragment of the message)
    "non-numeric": (b"a,b,label\n1,2,x\n3,oops,y\n", [], "not a number"),
    "missing-value": (b"a,b,label\n1,2,x\n3,,y\n", [], "empty cell"),
    "missing-target": (b"a,b,label\n1,2,x\n3,4,\n", [], "empty target"),
    "ragged-row": (b"a,b,label\n1,2,x\n3,4\n", [], "fields"),
    "empty": (b"", [], "empty file"),
    "header-only": (b"a,b,label\n", [], "no data rows"),
    "no-such-target": (b"a,b,label\n1,2,x\n3,4,y\n", ["--target", "nope"], "'nope' not found"),
    # no header row (a first line of numbers is data): a short row is named by line 1's width
    "no-header-ragged": (b"1,2,3\n4,5,6\n7,8\n", [], "line 3: 2 fields; line 1 has 3"),
    "target-position": (b"a,b,label\n1,2,x\n3,4,y\n", ["--target", "5"], "column 5 not found"),
    "not-utf8": (b"a,b,label\n1,2,\xff\xfe\n", [], "UTF-8"),
    "infinite": (b"a,b,label\n1,inf,x\n3,4,y\n", [], "finite"),
    "duplicate-columns": (b"a,a,label\n1,2,x\n3,4,y\n", [], "duplicate"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_malformed_csv_to_train(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                case: str) -> None:
    contents, options, fragment = CSV_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(contents)
    out_model = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--data", str(path), "--epochs", "1", "--quiet",
                          "--out", str(out_model), *options], capsys)
    assert_one_line_error(status, err, str(path))
    assert fragment in err
    assert not out_model.exists()


@pytest.mark.parametrize("case", ["non-numeric", "missing-value", "ragged-row", "empty",
                                  "header-only", "not-utf8", "infinite"])
def test_malformed_csv_to_predict(good: dict[str, Any], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], case: str) -> None:
    contents, _, _ = CSV_CASES[case]
    path = tmp_path / f"{case}.csv"
    # four feature columns, as the model wants, with the case's defect in the last
    path.write_bytes(contents.replace(b"label", b"c,d").replace(b"\n1,", b"\n0,0,1,")
                     .replace(b"\n3,", b"\n0,0,3,"))
    status, out, err = run(["predict", str(good["model"]), str(path)], capsys)
    assert_one_line_error(status, err, str(path))
    assert out == ""


def test_csv_with_wrong_width_to_predict(good: dict[str, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c,d,e\n1,2,3,4,5\n")
    status, _, err = run(["predict", str(good["model"]), str(path)], capsys)
    assert_one_line_error(status, err, str(path))
    assert "5 features" in err and str(good["model"]) in err


@pytest.mark.parametrize("case", ["not-a-zip", "no-X", "strings"])
def test_malformed_npz(good: dict[str, Any], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str], case: str) -> None:
    path = tmp_path / f"{case}.npz"
    if case == "not-a-zip":
        path.write_bytes(b"PK\x03\x04 but not really a zip file")
    elif case == "no-X":
        np.savez(path, y=np.arange(3))
    else:
        np.savez(path, X=np.array([["a", "b", "c", "d"]]), y=np.array([0]))
    for argv in (["predict", str(good["model"]), str(path)],
                 ["train", "--data", str(path), "--epochs", "1", "--quiet",
                  "--out", str(tmp_path / "m.safetensors")]):
        with warnings.catch_warnings():
            # np.load leaks its file handle when a "PK" file is no zip (NpzFile's
            # constructor raises after taking ownership); datasets._open_npz inherits it.
            # Collected here so the ResourceWarning cannot land on a later test.
            warnings.simplefilter("ignore", ResourceWarning)
            status, _, err = run(argv, capsys)
            gc.collect()
        assert_one_line_error(status, err, str(path))


def _write_case(case: str, folder: Path) -> tuple[Path, list[str], str]:
    """A bad file of a newer kind (issue 16): (path, extra train options, message fragment)."""
    rng = np.random.default_rng(0)
    if case == "npy-labels-mismatch":
        np.save(folder / "X.npy", rng.standard_normal((30, 4)).astype(np.float32))
        np.save(folder / "y.npy", np.arange(29) % 2)
        return folder / "X.npy", ["--target", str(folder / "y.npy")], "holds 29 labels"
    if case == "npy-without-labels":
        np.save(folder / "X.npy", rng.standard_normal((30, 4)).astype(np.float32))
        return folder / "X.npy", [], "cannot train on this file alone"
    if case == "tsv-bad-cell":
        path = folder / "t.tsv"
        path.write_text("a\tb\tlabel\n1\t2\tx\n3\toops\ty\n")
        return path, [], "line 3, column 'b': 'oops' is not a number"
    if case == "headerless-target-name":
        path = folder / "n.csv"
        path.write_text("1,2,0\n3,4,1\n")
        return path, ["--target", "label"], "the file has no header row"
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    path = folder / f"{case}.parquet"
    if case == "parquet-nested":
        pq.write_table(pa.table({"x": [1.0, 2.0], "tags": [[1], [2, 3]], "y": [0, 1]}), path)
        return path, [], "column 'tags' is nested"
    pq.write_table(pa.table({"x": [1.0, None, 2.0], "y": [0, 1, 0]}), path)
    return path, [], "row 1, column 'x': missing value (null)"


@pytest.mark.parametrize("case", ["npy-labels-mismatch", "npy-without-labels", "tsv-bad-cell",
                                  "headerless-target-name", "parquet-nested", "parquet-null"])
def test_malformed_new_kinds_to_train(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      case: str) -> None:
    path, options, fragment = _write_case(case, tmp_path)
    out_model = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--data", str(path), "--epochs", "1", "--quiet",
                          "--out", str(out_model), *options], capsys)
    assert_one_line_error(status, err, str(path))
    assert fragment in err
    assert not out_model.exists() and sorted(p.name for p in tmp_path.iterdir() if
                                             p.suffix == ".safetensors") == []


@pytest.mark.parametrize("argv", [
    ["train", "--data", "{missing}.csv"],
    ["train", "--data", "{missing}.npz"],
    ["train", "--data", "fashion-mnist", "--data-dir", "{missing}"],
    ["evaluate", "{model}", "--data", "{missing}.csv"],
    ["predict", "{model}", "{missing}.csv"],
    ["predict", "{model}", "{missing}"],
])
def test_missing_data_file(good: dict[str, Any], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    missing = str(tmp_path / "absent")
    argv = [a.format(missing=missing, model=good["model"]) for a in argv]
    status, _, err = run([*argv, "--quiet"] if argv[0] == "train" else argv, capsys)
    assert_one_line_error(status, err, missing)


# ------------------------------------------------------------------ real subprocesses
@pytest.mark.parametrize("case", ["trunc-data-half", "flip-data-first", "future-version",
                                  "plain-safetensors"])
def test_malformed_model_subprocess(good: dict[str, Any], tmp_path: Path, case: str) -> None:
    """The installed entry point's path: no traceback reaches a real terminal's stderr."""
    contents, fragment = _model_cases(good)[case]
    model = tmp_path / "bad.safetensors"
    model.write_bytes(contents)
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-m", "deltaprop", "predict", str(model),
                           str(good["features"])], capture_output=True, text=True, env=env,
                          timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, str(model))
    assert fragment in proc.stderr
    assert proc.stdout == ""


# ------------------------------------------------------------------ property-based
_FUZZ = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_only_own_errors(path: Path, contents: bytes) -> None:
    path.write_bytes(contents)
    try:
        io.load(path)
    except io.ModelFileError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)


def _idx_only_own_errors(path: Path, contents: bytes) -> None:
    path.write_bytes(contents)
    try:
        datasets.read_idx(path)
    except datasets.DataError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)


@_FUZZ
@given(contents=st.binary(max_size=600))
def test_random_bytes_to_model_loader(fuzz_dir: Path, contents: bytes) -> None:
    _load_only_own_errors(fuzz_dir / "random.safetensors", contents)


@_FUZZ
@given(header=st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=8), max_size=4), tail=st.binary(max_size=64))
def test_random_header_to_model_loader(fuzz_dir: Path, header: dict[str, Any],
                                       tail: bytes) -> None:
    """Well-formed length and JSON, arbitrary content: reaches the deeper checks."""
    raw = json.dumps(header).encode()
    _load_only_own_errors(fuzz_dir / "header.safetensors",
                          struct.pack("<Q", len(raw)) + raw + tail)


@_FUZZ
@given(data=st.data())
def test_mutated_model_to_model_loader(good: dict[str, Any], fuzz_dir: Path,
                                       data: st.DataObject) -> None:
    """A good model file with random bytes overwritten and a random truncation."""
    contents = bytearray(good["bytes"])
    for _ in range(data.draw(st.integers(1, 4))):
        offset = data.draw(st.integers(0, len(contents) - 1))
        contents[offset] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(contents)))
    _load_only_own_errors(fuzz_dir / "mutated.safetensors", bytes(contents[:cut]))


@_FUZZ
@given(contents=st.binary(max_size=300))
def test_random_bytes_to_idx_reader(fuzz_dir: Path, contents: bytes) -> None:
    _idx_only_own_errors(fuzz_dir / "random-idx", contents)


@_FUZZ
@given(code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
       dims=st.lists(st.integers(0, 6), min_size=0, max_size=9),
       tail=st.binary(max_size=200), gzipped=st.booleans())
def test_random_idx_headers_to_idx_reader(fuzz_dir: Path, code: int, dims: list[int],
                                          tail: bytes, gzipped: bool) -> None:
    """Plausible headers (valid or not) with any amount of data, raw or gzipped."""
    raw = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + tail
    _idx_only_own_errors(fuzz_dir / "header-idx", gzip.compress(raw, mtime=0) if gzipped
                         else raw)
