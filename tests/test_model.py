"""deltaprop.model.Model: one model from training to deployment.

The same raw rows must get the same answer on every path: ``deltaprop predict``,
``dp.load(...).predict`` and onnxruntime on the exported graph. Before the Model existed the
scaling and target standardisation lived in the command's code only, and the other two paths
silently expected pre-scaled rows (issue 12's table: 208.0 vs −0.098 on diabetes).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from conftest import run_cli
from deltaprop import datasets, optim
from deltaprop.preprocessing import LabelEncoder, Scaler

FASHION = Path("/usr/share/datasets/fashion-mnist")

# float32 models: the three paths run the same float32 operations in different libraries
# (NumPy/OpenBLAS, onnxruntime's MLAS), whose summation orders differ; 1e-5 relative is
# about 100 float32 ulps, well above that and far below any scaling or labelling mistake.
RTOL = 1e-5


def _iris_csv(path: Path) -> None:
    """Iris with string labels in a named column that is not the last."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = np.asarray(iris.target_names)[iris.target]
    with path.open("w") as f:
        f.write("sepal_length,sepal_width,species,petal_length,petal_width\n")
        for x, label in zip(iris.data, names, strict=True):
            f.write(f"{x[0]},{x[1]},{label},{x[2]},{x[3]}\n")


CASES = {
    "digits": ["--data", "digits", "--hidden", "16", "--epochs", "2"],
    "diabetes": ["--data", "diabetes", "--hidden", "8", "--epochs", "3"],
    "csv-string-labels": ["--data", "iris.csv", "--target", "species", "--hidden", "6",
                          "--epochs", "3"],
    "fashion-mnist": ["--data", "fashion-mnist", "--hidden", "32", "--epochs", "1",
                      "--batch-size", "128"],
}


def _raw_rows(case: str, tmp_path: Path) -> np.ndarray:
    """Test rows of the case's data, as the user has them (unscaled)."""
    if case == "csv-string-labels":
        data = datasets.load(tmp_path / "iris.csv", target="species")
    else:
        data = datasets.load(case)
    return np.asarray(data.X_test[:25], dtype=np.float64)


@pytest.mark.parametrize("case", list(CASES))
def test_cli_load_and_onnx_agree_on_raw_rows(case: str, tmp_path: Path, monkeypatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    if case == "fashion-mnist" and not FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    monkeypatch.chdir(tmp_path)
    if case == "csv-string-labels":
        _iris_csv(tmp_path / "iris.csv")
    status, _, err = run_cli(["train", *CASES[case], "--out", "m.safetensors", "--quiet"],
                             capsys)
    assert status == 0, err
    X = _raw_rows(case, tmp_path)
    header = ",".join(f"f{k}" for k in range(X.shape[1]))
    np.savetxt("rows.csv", X, delimiter=",", header=header, comments="", fmt="%.17g")
    status, _, err = run_cli(["predict", "m.safetensors", "rows.csv", "--out", "p.csv"], capsys)
    assert status == 0, err
    status, _, err = run_cli(["export", "m.safetensors", "m.onnx"], capsys)
    assert status == 0, err

    model = dp.load("m.safetensors")
    session = ort.InferenceSession("m.onnx", providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"input": X.astype(np.float32)})
    rows = [line.split(",") for line in Path("p.csv").read_text().splitlines()[1:]]
    if model.task == "regression":
        predicted = model.predict(X)
        assert np.abs(predicted).max() > 10  # in diabetes' units (25..346), not standardised
        cli = np.array([[float(v) for v in r] for r in rows])
        np.testing.assert_allclose(cli, predicted, rtol=5e-6)  # the CSV's 6 digits
        np.testing.assert_allclose(onnx_out[0], predicted, rtol=RTOL)
        return
    labels = model.predict(X)
    assert [r[0] for r in rows] == [str(c) for c in labels]
    assert [str(c) for c in onnx_out[1]] == [str(c) for c in labels]  # ONNX "label"
    proba = model.predict_proba(X)
    cli_proba = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(cli_proba, proba, rtol=0, atol=1e-6)  # 6 significant digits
    np.testing.assert_allclose(onnx_out[0], proba, rtol=RTOL, atol=1e-7)
    if case == "csv-string-labels":
        assert set(labels) <= {"setosa", "versicolor", "virginica"}


def test_the_issue_12_table_diabetes_in_its_own_units(tmp_path: Path, monkeypatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's three paths on five raw diabetes rows: one answer, in y's units."""
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(["train", "--data", "diabetes", "--out", "diab.safetensors",
                              "--quiet"], capsys)
    assert status == 0, err
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    model = dp.load("diab.safetensors")
    predicted = model.predict(X[:5])[:, 0]
    # the first five diabetes targets are 151, 75, 141, 206, 135: a trained regressor is
    # within the data's spread of them, which standardised outputs (≈ ±1) never are
    assert np.all(np.abs(predicted - y[:5]) < 2 * y.std())
    assert model.evaluate(X, y)["r2"] > 0.3


# ------------------------------------------------------------------ the Python API
def _blobs(rng: np.random.Generator, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    centres = np.array([[0.0, 0.0, 100.0], [3.0, 0.0, 100.0], [0.0, 3.0, 100.0]])
    y = rng.integers(0, 3, n)
    X = centres[y] + rng.normal(scale=0.5, size=(n, 3))
    X[:, 2] *= 50.0  # a feature in other units: standard scaling must matter
    return X, y


def test_fit_predict_save_load_with_labels_and_scaling(tmp_path: Path,
                                                       rng: np.random.Generator) -> None:
    X, y = _blobs(rng)
    names = np.array(["low", "east", "north"])[y]
    model = dp.Model(dp.Network([3, 8, 3], seed=0, dtype="float64"))
    model.fit(X, names, epochs=40, batch_size=16, optimizer=optim.Adam(lr=0.02), verbose=0)
    assert list(model.classes) == ["east", "low", "north"]  # sorted, as found in y
    np.testing.assert_allclose(model.scaler.offset, X.mean(axis=0))
    assert model.evaluate(X, names)["accuracy"] > 0.9
    np.testing.assert_array_equal(  # the network sees scaled rows and class indices
        model.predict(X), model.classes[model.network.predict(model.scaler.transform(X))])
    model.save(tmp_path / "m.safetensors")
    back = dp.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


def test_regression_targets_are_standardised_and_mapped_back(rng: np.random.Generator) -> None:
    X = rng.normal(size=(200, 2))
    y = 300.0 + 40.0 * X[:, 0] - 25.0 * X[:, 1]  # in "units" far from 0
    model = dp.Model(dp.Network([2, 8, 1], output="identity", loss="mse", dtype="float64",
                                seed=0))
    model.fit(X, y, epochs=60, batch_size=16, optimizer=optim.Adam(lr=0.01), verbose=0)
    assert model.target_scaler.offset[0] == pytest.approx(y.mean())
    result = model.evaluate(X, y)
    assert result["r2"] > 0.98 and result["rmse"] < 10
    # the network itself learned standardised targets
    standardised = model.network.predict(model.transform(X))[:, 0]
    assert abs(standardised.mean()) < 0.2 and standardised.std() == pytest.approx(1, abs=0.2)


def test_validation_rows_use_the_training_rows_scaling(rng: np.random.Generator) -> None:
    X, y = _blobs(rng)
    model = dp.Model(dp.Network([3, 6, 3], seed=0, dtype="float64"))
    h = model.fit(X[:90], y[:90], validation_data=(X[90:] + 1000.0, y[90:]), epochs=2,
                  verbose=0)
    np.testing.assert_allclose(model.scaler.offset, X[:90].mean(axis=0))  # not the val rows
    assert len(h.val_loss) == 2


def test_given_class_order_is_kept(rng: np.random.Generator) -> None:
    """Class names in output order (as a data set lists them) are not re-sorted."""
    X, y = _blobs(rng)
    order = ["zeta", "alpha", "mid"]
    model = dp.Model(dp.Network([3, 6, 3], seed=0), labels=order)
    model.fit(X, np.array(order)[y], epochs=1, verbose=0)
    assert list(model.classes) == order
    index = model.network.predict(model.transform(X))
    np.testing.assert_array_equal(model.predict(X), np.array(order)[index])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: dp.Model("net"), "must be a deltaprop.Network"),
        (lambda: dp.Model(dp.Network([2, 2]), labels=["a", "b", "c"]),
         "class labels list 3 classes; the network has 2"),
        (lambda: dp.Model(dp.Network([2, 1], output="identity", loss="mse"), labels=["a"]),
         "`labels` apply to a classifier"),
        (lambda: dp.Model(dp.Network([2, 2]), scaler=3), "`scaler` must be a Scaler"),
        (lambda: dp.Model(dp.Network([2, 2]), labels=["a", "a"]), "lists a label twice"),
    ],
)
def test_bad_model_arguments(build, message: str) -> None:
    with pytest.raises(dp.DeltapropError, match=message):
        build()


def test_unknown_label_and_wrong_width_are_one_line_errors(rng: np.random.Generator) -> None:
    X, y = _blobs(rng)
    model = dp.Model(dp.Network([3, 4, 3], seed=0))
    model.fit(X, y, epochs=1, verbose=0)
    with pytest.raises(dp.DeltapropError, match=r"label 7 not among the model's classes"):
        model.evaluate(X[:3], [0, 1, 7])
    with pytest.raises(dp.DeltapropError, match=r"must have shape \(m, 3\); got shape"):
        model.predict(X[:, :2])


# ------------------------------------------------------------------ multilabel (issue 12 §2)
def _multilabel(rng: np.random.Generator, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Three independent labels: x0 > 0, x1 > 0, x0 + x1 > 1."""
    X = rng.normal(size=(n, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(axis=1) > 1]).astype(np.int64)
    return X, Y


def test_multilabel_predicts_label_rows_and_reports_per_label_accuracy(
        rng: np.random.Generator) -> None:
    X, Y = _multilabel(rng)
    net = dp.Network([2, 16, 3], activation="tanh", output="sigmoid",
                     loss="binary_cross_entropy", dtype="float64", seed=0)
    assert net.task == "multilabel"
    h = net.fit(X, Y, epochs=40, batch_size=16, optimizer=optim.Adam(lr=0.02), verbose=0)
    predicted = net.predict(X)
    assert predicted.shape == (300, 3) and set(np.unique(predicted)) <= {0, 1}
    result = net.evaluate(X, Y)
    assert "accuracy" not in result  # an argmax "accuracy" means nothing here
    assert result["label_accuracy"] == pytest.approx(np.mean(predicted == Y))
    assert result["subset_accuracy"] == pytest.approx(np.mean((predicted == Y).all(axis=1)))
    assert result["label_accuracy"] > 0.9
    assert h.label_accuracy and not h.accuracy
    model = dp.Model(net, scaler="none")
    model.fit(X, Y, epochs=1, verbose=0)  # the encoder sees an (m, 3) 0/1 matrix
    assert model.task == "multilabel" and model.labels.n_labels == 3
    assert model.predict(X).shape == (300, 3)


def test_multilabel_targets_for_a_softmax_network_are_refused(rng: np.random.Generator) -> None:
    X, Y = _multilabel(rng, 20)
    model = dp.Model(dp.Network([2, 4, 3], seed=0))
    with pytest.raises(dp.DeltapropError, match="3 labels per sample need 3 sigmoid outputs"):
        model.fit(X, Y, epochs=1, verbose=0)


# ------------------------------------------------------------------ no process-wide effects
def test_plotting_leaves_the_matplotlib_backend_alone(tmp_path: Path, monkeypatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib

    import deltaprop  # noqa: F401  (importing must not change it either)

    matplotlib.use("svg")  # a backend that is not Agg, as a notebook's inline one is not
    try:
        before = matplotlib.get_backend()
        monkeypatch.chdir(tmp_path)
        status, _, err = run_cli(["train", "--data", "circles", "--epochs", "2", "--hidden", "4",
                                  "--plot", "curves.png", "--quiet"], capsys)
        assert status == 0, err
        status, _, err = run_cli(["draw", "model.safetensors", "--out", "net.png"], capsys)
        assert status == 0, err
        status, _, err = run_cli(["bias-study", "--data", "xor", "--seeds", "1", "--epochs", "2",
                                  "--modes", "learned", "--out-plot", "study.png"], capsys)
        assert status == 0, err
        assert matplotlib.get_backend() == before
        for name in ("curves.png", "net.png", "study.png"):
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        matplotlib.use("agg")


def test_two_fits_in_two_threads_equal_the_same_fits_one_after_the_other(
        rng: np.random.Generator) -> None:
    """fit changes no process-wide state (the BLAS thread limit is opt-in), so concurrent fits
    at batch size 8 — where the command limits BLAS to one thread — are repeatable, and the
    process keeps its BLAS pool. (fit used to limit it itself below 16 rows: two such fits in
    threads left the process at one BLAS thread for good, the second restoring the first's
    limit as the "original".)"""
    from threadpoolctl import threadpool_info

    pool_before = [info["num_threads"] for info in threadpool_info()]
    X = rng.normal(size=(400, 20))
    y = (X[:, :2].sum(axis=1) > 0).astype(np.int64)

    def train(seed: int) -> list[np.ndarray]:
        net = dp.Network([20, 32, 2], seed=seed)
        net.fit(X, y, epochs=3, batch_size=8, optimizer=optim.SGD(lr=0.05, momentum=0.9),
                verbose=0)
        return [p.copy() for _, p in net.parameters()]

    sequential = [train(0), train(1)]
    concurrent: list[list[np.ndarray] | None] = [None, None]

    def run(k: int) -> None:
        concurrent[k] = train(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seq, con in zip(sequential, concurrent, strict=True):
        for a, b in zip(seq, con, strict=True):
            np.testing.assert_array_equal(a, b)
    assert [info["num_threads"] for info in threadpool_info()] == pool_before


def test_label_encoder_round_trip_and_errors() -> None:
    enc = LabelEncoder(["b", "a", "c"])
    np.testing.assert_array_equal(enc.encode(["c", "b"]), [2, 0])
    assert LabelEncoder.from_dict(enc.to_dict()).classes.tolist() == ["b", "a", "c"]
    with pytest.raises(dp.DeltapropError, match="labels"):
        LabelEncoder.from_dict({"kind": "classes", "classes": [[1], [2]]})
    assert Scaler("standard").is_fitted is False and Scaler("none").is_fitted


def test_a_memory_mapped_X_is_scaled_batch_by_batch(tmp_path: Path,
                                                    rng: np.random.Generator) -> None:
    """Model.fit on a memory map: statistics in one streaming pass, batches scaled as the
    file is read — the same weights as fitting the rows in memory with the same order."""
    X, y = _blobs(rng, 400)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")

    def fit(rows: np.ndarray) -> dp.Model:
        model = dp.Model(dp.Network([3, 8, 3], seed=0))
        model.fit(rows, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        return model

    in_memory, from_file = fit(np.asarray(mapped).copy()), fit(mapped)
    np.testing.assert_allclose(from_file.scaler.offset, in_memory.scaler.offset, rtol=1e-12)
    # the streaming mean and std differ from the one-pass ones in float64's last bits,
    # which can move a float32 input by one ulp: 1e-6 relative covers that, nothing more
    for (_, p), (_, q) in zip(in_memory.parameters(), from_file.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)
