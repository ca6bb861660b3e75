"""The ``deltaprop`` command: end-to-end runs, help, bad command lines, saves, resume.

End-to-end paths run the real command in a subprocess (``python -m deltaprop`` with
PYTHONPATH set to the src folder, so they work installed or not); the rest calls
``deltaprop.cli.main`` in-process, which is what the installed entry point runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from conftest import run_cli as run
from deltaprop import cli, datasets, io, jobs, schedules
from deltaprop.errors import ModelFileError

SRC = str(Path(__file__).resolve().parents[1] / "src")
FASHION = Path("/usr/share/datasets/fashion-mnist")


def deltaprop(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("DELTAPROP_FASHION_MNIST", None)
    return subprocess.run([sys.executable, "-m", "deltaprop", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)




def one_line_error(err: str, interrupted: bool = False) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    if interrupted:  # Click ends the ^C line on a terminal with a newline of its own
        lines = [line for line in lines if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------ end to end (subprocess)
@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``deltaprop train`` with no arguments, in an empty folder."""
    cwd = tmp_path_factory.mktemp("default")
    proc = deltaprop("train", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return {"cwd": cwd, "proc": proc, "model": cwd / "model.safetensors"}


def test_default_train_reaches_95_percent_on_digits(default_run: dict[str, Any]) -> None:
    last = default_run["proc"].stdout.strip().splitlines()[-1]
    match = re.search(r"test accuracy (\d\.\d+); model saved to (\S+)", last)
    assert match, last
    # ≥ 95% is the bar; the default MLP gets about 97% on the 450 test digits
    assert float(match.group(1)) >= 0.95
    assert match.group(2) == "model.safetensors"
    assert default_run["model"].is_file()
    assert "Traceback" not in default_run["proc"].stderr


def test_info_of_the_saved_model(default_run: dict[str, Any]) -> None:
    proc = deltaprop("info", "model.safetensors", "--json", cwd=default_run["cwd"])
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["config"]["sizes"][0] == 64 and info["config"]["sizes"][-1] == 10
    assert info["meta"]["data"] == "digits"
    assert info["classes"] == [str(k) for k in range(10)]
    assert info["parameters"] == sum(
        layer["weights"] + layer["biases"] for layer in info["layers"]
    )
    assert not info["checkpoint"]
    human = deltaprop("info", "model.safetensors", cwd=default_run["cwd"])
    assert human.returncode == 0 and "learned" in human.stdout


def test_evaluate_repeats_the_training_test_accuracy(default_run: dict[str, Any]) -> None:
    """Same data, same split (seed 0), same scaling from the file: the same numbers."""
    proc = deltaprop("evaluate", "model.safetensors", "--data", "digits", "--json",
                     cwd=default_run["cwd"])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    saved = dp.load(default_run["model"]).meta["test"]
    assert result["accuracy"] == saved["accuracy"]
    assert result["loss"] == pytest.approx(saved["loss"], rel=1e-12)  # same float32 math
    cm = np.array(result["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == result["samples"] == 450
    assert np.trace(cm) / cm.sum() == pytest.approx(result["accuracy"], abs=1e-12)


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_predict_round_trip(default_run: dict[str, Any], fmt: str) -> None:
    """Predictions from the CLI equal dp.load(model).predict on the same raw rows."""
    data = datasets.load("digits")
    X = data.X_test[:40]
    cwd = default_run["cwd"]
    source = cwd / f"samples.{fmt}"
    if fmt == "csv":
        header = ",".join(f"px{k}" for k in range(X.shape[1]))
        np.savetxt(source, X, delimiter=",", header=header, comments="", fmt="%.9g")
    else:
        np.savez(source, X=X)
    proc = deltaprop("predict", "model.safetensors", source.name, "--out", "pred.csv", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    lines = (cwd / "pred.csv").read_text().splitlines()
    assert lines[0].split(",") == ["prediction", *(f"p_{k}" for k in range(10))]
    rows = [line.split(",") for line in lines[1:]]
    model = dp.load(default_run["model"])  # raw rows in: the file carries its scaling
    assert [r[0] for r in rows] == [str(c) for c in model.predict(X)]
    # probabilities are printed with 6 significant digits: |error| ≤ 5e-7 for p ≤ 1
    proba = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-6)
    # and the model is good on these rows, so the comparison is not of noise
    assert np.mean(model.predict(X).astype(int) == data.y_test[:40]) >= 0.9


def test_plot_writes_a_png(tmp_path: Path) -> None:
    proc = deltaprop("train", "--data", "iris", "--epochs", "3", "--quiet",
                     "--plot", "curves.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "curves.png"
    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 400  # two panels
    assert image.std() > 0  # not a blank canvas
    assert png.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["train", "--data", "iris", "--epochs", "2", "--json",
                            "--out", str(tmp_path / "m.safetensors")], capsys)
    assert status == 0, err
    summary = json.loads(out)
    assert set(summary["test"]) == {"loss", "accuracy"}
    assert summary["model"] == str(tmp_path / "m.safetensors")
    assert len(summary["history"]["loss"]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(),
                    reason=f"{FASHION} is absent; install Debian's dataset-fashion-mnist")
def test_fashion_mnist_reaches_88_percent(tmp_path: Path) -> None:
    """The documented Fashion-MNIST run (README): ≥ 88% test accuracy (about 1–2 minutes)."""
    proc = deltaprop("train", "--data", "fashion-mnist", "--hidden", "256,128",
                     "--batch-size", "128", "--epochs", "10", "--json", cwd=tmp_path,
                     timeout=1800)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["data"] == "fashion-mnist"
    assert summary["test"]["accuracy"] >= 0.88


# ------------------------------------------------------------------ help and command lines
def _commands() -> list[str]:
    return sorted(cli.cli.commands)


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["--help"], capsys)
    assert status == 0
    assert "Example" in out
    for name in _commands():
        assert name in out


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_an_example(command: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run([command, "--help"], capsys)
    assert status == 0
    assert "Example" in out
    assert f"deltaprop {command}" in out


def test_help_subprocess_is_quick_to_import(tmp_path: Path) -> None:
    """--help must not import the heavy libraries (matplotlib, sklearn, torch, safetensors)."""
    code = ("import sys; from deltaprop import cli\n"
            "try: cli.main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('matplotlib', 'sklearn', 'torch', 'safetensors', 'rich') "
            "if m in sys.modules]\nprint('HEAVY', heavy, file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert "HEAVY []" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "--bogus"], "No such option"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--epochs", "ten"], "--epochs"),
        (["train", "--batch-size", "-1"], "--batch-size"),
        (["train", "--val-split", "1.5"], "--val-split"),
        (["train", "--checkpoint-every", "0"], "--checkpoint-every"),
        (["train", "--patience", "0"], "--patience"),
        (["train", "--hidden", "12,x"], "--hidden"),
        (["train", "--hidden", "0"], "--hidden"),
        (["train", "--bias", "sometimes"], "--bias"),
        (["train", "--dropout", "1.5"], "--dropout"),
        (["train", "--dropout", "0.2,x"], "--dropout"),
        (["train", "--l1", "-1"], "--l1"),
        (["train", "--max-norm", "0"], "--max-norm"),
        (["nonsense"], "No such command"),
        (["info"], "MODEL"),
        (["predict", "m.safetensors"], "INPUT"),
    ],
)
def test_bad_command_line_exits_2(argv: list[str], fragment: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(argv, capsys)
    assert status == 2, err
    assert fragment in one_line_error(err)
    assert out == ""


def test_bad_command_line_subprocess(tmp_path: Path) -> None:
    proc = deltaprop("train", "--epochs", "0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--epochs" in one_line_error(proc.stderr)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "--data", "no-such-set", "--quiet"], "unknown data set"),
        (["train", "--data", "iris", "--activation", "swish", "--quiet"], "swish"),
        (["train", "--data", "iris", "--optimizer", "lion", "--quiet"], "lion"),
        (["train", "--data", "iris", "--optimizer", "adam", "--momentum", "0.9", "--quiet"],
         "--momentum"),
        (["train", "--data", "iris", "--hidden", "8,8", "--dropout", "0.1,0.2,0.3", "--quiet"],
         "`dropout` needs 2 entries"),
        (["train", "--data", "iris", "--batch-norm", "--batch-size", "1", "--quiet"],
         "batch normalization needs batches of at least 2 samples"),
    ],
)
def test_impossible_settings_exit_1(argv: list[str], fragment: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run([*argv, "--out", str(tmp_path / "m.safetensors")], capsys)
    assert status == 1, err
    assert fragment in one_line_error(err)
    assert not (tmp_path / "m.safetensors").exists()


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(opts: dict[str, Any]) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "train", interrupted)
    status, _, err = run(["train"], capsys)
    assert status == 130
    assert one_line_error(err, interrupted=True) == "error: interrupted"


@pytest.mark.parametrize("bug", [ValueError, TypeError, OSError, ZeroDivisionError])
def test_an_internal_error_keeps_its_traceback(bug: type[Exception], tmp_path: Path) -> None:
    """Only DeltapropError is a user's error; a bug inside a command is not hidden.

    The built-in kinds the command used to turn into one line are planted one by one.
    """
    code = (
        "import sys; from deltaprop import cli, jobs\n"
        "def broken(opts):\n"
        f"    raise {bug.__name__}('planted bug in jobs.train')\n"
        "jobs.train = broken\n"
        "cli.main(['train', '--quiet'])\n"
    )
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert job.returncode == 1
    assert "Traceback (most recent call last)" in job.stderr
    assert f"{bug.__name__}: planted bug in jobs.train" in job.stderr
    assert "error: planted" not in job.stderr


# ------------------------------------------------------------------ interrupted saves
def test_run_interrupted_during_save_keeps_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C (or a crash) inside the final save's fsync: the old model stays, bit for bit."""
    model = tmp_path / "model.safetensors"
    argv = ["train", "--data", "iris", "--epochs", "2", "--quiet", "--out", str(model)]
    status, _, err = run([*argv, "--seed", "1"], capsys)
    assert status == 0, err
    before = model.read_bytes()
    old = dp.load(model)

    def fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)
    status, _, err = run([*argv, "--seed", "2"], capsys)
    monkeypatch.undo()
    assert status == 130
    assert one_line_error(err, interrupted=True) == "error: interrupted"
    assert model.read_bytes() == before
    again = dp.load(model)
    for (_, p), (_, q) in zip(old.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_run_that_fails_keeps_the_old_model(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"precious")
    status, _, err = run(["train", "--data", str(tmp_path / "missing.csv"), "--quiet",
                          "--out", str(model)], capsys)
    assert status == 1
    one_line_error(err)
    assert model.read_bytes() == b"precious"


# ------------------------------------------------------------------ resume
# Each epoch's order is a fresh permutation drawn from the network's generator, whose state
# the checkpoint keeps: a resumed run sees the same batches and ends bitwise identical.
def _tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(path)


def _assert_bitwise_equal(a: Path, b: Path) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name].dtype == tb[name].dtype
        assert ta[name].tobytes() == tb[name].tobytes(), name


RESUME_SETTINGS = {
    "adam": [],
    "sgd": ["--optimizer", "sgd", "--lr", "0.05"],
    # lr 0.05 makes Adam's validation loss bounce, so the stopper's best epoch, its wait
    # counter and its saved best weights all matter for the resumed run
    "adam-patience": ["--lr", "0.05", "--patience", "2"],
    "sgd-patience-float64": ["--optimizer", "sgd", "--lr", "0.3", "--patience", "2",
                             "--dtype", "float64", "--bias", "unit"],
    # the masks' generator, batch norm's running statistics and γ/β's optimizer state, and
    # the early stopper's best weights with the running statistics
    "regularized": ["--dropout", "0.3", "--batch-norm", "--l1", "1e-4", "--max-norm", "2",
                    "--patience", "2", "--lr", "0.01"],
}


@pytest.mark.parametrize("setting", sorted(RESUME_SETTINGS))
def test_resume_is_bitwise_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     setting: str) -> None:
    """Run A: 6 epochs. Run B: 3 epochs with a checkpoint, then --resume to 6 epochs."""
    common = ["--data", "digits", "--hidden", "24", "--checkpoint-every", "3", "--quiet",
              *RESUME_SETTINGS[setting]]
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    status, _, err = run(["train", *common, "--epochs", "6", "--out", str(a)], capsys)
    assert status == 0, err
    status, _, err = run(["train", *common, "--epochs", "3", "--out", str(b)], capsys)
    assert status == 0, err
    ckpt = tmp_path / "b.ckpt.safetensors"
    assert ckpt.is_file()
    status, _, err = run(["train", "--resume", str(ckpt), "--epochs", "6", "--quiet",
                          "--out", str(b)], capsys)
    assert status == 0, err
    _assert_bitwise_equal(a, b)
    meta_a, meta_b = dp.load(a).meta, dp.load(b).meta
    assert meta_a["epochs"] == meta_b["epochs"]
    assert meta_a["test"] == meta_b["test"]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_a_killed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], schedule: str) -> None:
    """Ctrl-C right after epoch 3's checkpoint; --resume alone finishes the same 6 epochs
    (with --schedule cosine the resumed epochs continue the same annealing)."""
    common = ["--data", "digits", "--hidden", "24", "--epochs", "6", "--checkpoint-every", "3",
              "--optimizer", "sgd", "--momentum", "0.5", "--quiet", "--schedule", schedule]
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    status, _, err = run(["train", *common, "--out", str(a)], capsys)
    assert status == 0, err

    real = jobs.Checkpoint.on_epoch_end

    def on_epoch_end(self: jobs.Checkpoint, epoch: int, logs: dict[str, float]) -> None:
        real(self, epoch, logs)
        if epoch + 1 == 3:
            raise KeyboardInterrupt

    b.write_bytes(b"an older model")
    monkeypatch.setattr(jobs.Checkpoint, "on_epoch_end", on_epoch_end)
    status, _, err = run(["train", *common, "--out", str(b)], capsys)
    monkeypatch.undo()
    assert status == 130, err
    assert b.read_bytes() == b"an older model"  # the interrupted run saved no model
    saved = io.load_checkpoint(tmp_path / "b.ckpt.safetensors")[1]
    assert ("schedule" in saved) == (schedule == "cosine")  # the schedule's state travels
    if schedule == "cosine":  # and fits only the schedule it was saved for
        with pytest.raises(ModelFileError, match="schedule state does not fit"):
            io.restore_schedule(tmp_path / "b.ckpt.safetensors", saved, schedules.StepLR(1))
    status, _, err = run(["train", "--resume", str(tmp_path / "b.ckpt.safetensors"),
                          "--quiet", "--out", str(b)], capsys)
    assert status == 0, err
    _assert_bitwise_equal(a, b)


def test_cosine_schedule_anneals_the_learning_rate(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """η_e = ½ η_0 (1 + cos(π e / E)) from --lr, epoch by epoch (torch's CosineAnnealingLR)."""
    status, text, err = run(["train", "--data", "iris", "--epochs", "4", "--lr", "0.01",
                             "--schedule", "cosine", "--json",
                             "--out", str(tmp_path / "m.safetensors")], capsys)
    assert status == 0, err
    lrs = json.loads(text)["history"]["lr"]
    np.testing.assert_allclose(lrs, [0.005 * (1 + np.cos(np.pi * e / 4)) for e in range(4)],
                               rtol=1e-15)


def test_resume_from_a_plain_model_is_an_error(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--data", "iris", "--epochs", "1", "--quiet",
                          "--out", str(model)], capsys)
    assert status == 0, err
    status, _, err = run(["train", "--resume", str(model), "--out", str(tmp_path / "n.st")],
                         capsys)
    assert status == 1
    assert str(model) in one_line_error(err) and "not a checkpoint" in err


def test_resume_on_other_data_is_an_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["train", "--data", "iris", "--epochs", "1", "--checkpoint-every", "1",
                          "--quiet", "--out", str(tmp_path / "m.safetensors")], capsys)
    assert status == 0, err
    ckpt = tmp_path / "m.ckpt.safetensors"
    status, _, err = run(["train", "--resume", str(ckpt), "--data", "digits", "--epochs", "2",
                          "--quiet", "--out", str(tmp_path / "n.safetensors")], capsys)
    assert status == 1
    assert str(ckpt) in one_line_error(err)


def test_resume_refuses_a_changed_learning_rate(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The network and optimizer come from the checkpoint: a new --lr would be silently
    # ignored, so it is refused.
    status, _, err = run(["train", "--data", "iris", "--epochs", "1", "--checkpoint-every", "1",
                          "--quiet", "--out", str(tmp_path / "m.safetensors")], capsys)
    assert status == 0, err
    ckpt = tmp_path / "m.ckpt.safetensors"
    status, _, err = run(["train", "--resume", str(ckpt), "--lr", "0.5", "--epochs", "2",
                          "--quiet", "--out", str(tmp_path / "n.safetensors")], capsys)
    assert status == 1
    assert "--lr cannot change when resuming" in one_line_error(err)


def test_resume_accepts_the_same_command_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The first command line plus --resume works: only a value that differs is refused, and
    the message names both values (issue 16's papercut: --hidden was refused unchanged)."""
    first = ["train", "--data", "iris", "--hidden", "6,4", "--lr", "0.01", "--epochs", "2",
             "--checkpoint-every", "1", "--quiet", "--out", str(tmp_path / "m.safetensors")]
    status, _, err = run(first, capsys)
    assert status == 0, err
    ckpt = str(tmp_path / "m.ckpt.safetensors")
    status, _, err = run([*first, "--resume", ckpt], capsys)
    assert status == 0, err
    status, _, err = run([*first[:4], "8,4", *first[5:], "--resume", ckpt], capsys)
    assert status == 1
    line = one_line_error(err)
    assert "--hidden cannot change" in line and "6,4" in line and "8,4" in line


def test_a_checkpoint_predicts_like_a_finished_model(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Checkpoints carry the class names and the scaling, so evaluate on one is meaningful.
    out = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--epochs", "2", "--checkpoint-every", "2", "--quiet",
                          "--out", str(out)], capsys)
    assert status == 0, err
    from deltaprop import io

    ckpt, final = io.load(tmp_path / "m.ckpt.safetensors"), io.load(out)
    assert ckpt.preprocessing() == final.preprocessing()
    assert ckpt.meta["epochs"] == 2
    np.testing.assert_array_equal(ckpt.classes, final.classes)


def test_regression_learns_standardised_targets_and_predicts_in_their_units(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # diabetes targets run 25..346: trained raw, the default run ended with R² < 0 (test
    # loss 7345); standardised, it explains part of the variance and predicts in the
    # targets' own units.
    out = tmp_path / "d.safetensors"
    status, stdout, err = run(["train", "--data", "diabetes", "--json", "--out", str(out)],
                              capsys)
    assert status == 0, err
    test = json.loads(stdout)["test"]
    assert test["r2"] > 0.1 and test["rmse"] < 70  # std of the targets is ~77
    from deltaprop import datasets

    data = datasets.load("diabetes")
    samples = tmp_path / "x.npz"
    np.savez(samples, X=data.X_test)
    status, stdout, err = run(["predict", str(out), str(samples)], capsys)
    assert status == 0, err
    predicted = np.array([float(v) for v in stdout.split()[1:]])
    assert abs(predicted.mean() - data.y_test.mean()) < 30  # in units, not standardised
    assert np.sqrt(np.mean((predicted - data.y_test) ** 2)) == pytest.approx(test["rmse"],
                                                                              rel=1e-4)


def test_train_and_evaluate_on_a_sparse_npz(tmp_path: Path, capsys, monkeypatch) -> None:
    """An .npz written by scipy.sparse.save_npz, labels from --target LABELS.npy: trained and
    evaluated as CSR rows (the loader and the model keep them sparse, scaling 'none')."""
    sparse = pytest.importorskip("scipy.sparse")
    X = sparse.random(300, 40, density=0.15, format="csr", random_state=0, dtype=np.float64)
    y = np.where(X[:, :20].sum(axis=1).A1 > X[:, 20:].sum(axis=1).A1, "spam", "ham")
    sparse.save_npz(tmp_path / "X.npz", X)
    np.save(tmp_path / "y.npy", y)
    monkeypatch.chdir(tmp_path)
    data = datasets.load("X.npz", target="y.npy")
    assert data.X_train.format == "csr" and data.class_names == ["ham", "spam"]
    code, out, err = run(["train", "--data", "X.npz", "--target", "y.npy", "--epochs", "40",
                          "--hidden", "8", "--lr", "0.01", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["test"]["accuracy"] > 0.8  # a linear rule over the columns' sums
    model = dp.load("model.safetensors")
    assert model.scaler.kind == "none"
    assert set(model.predict(data.X_test)) <= {"ham", "spam"}
    code, out, err = run(["evaluate", "model.safetensors", "--data", "X.npz", "--target",
                          "y.npy", "--json"], capsys)
    assert code == 0 and json.loads(out)["accuracy"] == summary["test"]["accuracy"], err
    code, _, err = run(["train", "--data", "X.npz", "--epochs", "1"], capsys)
    assert code == 1 and "pass the labels as a .npy file: --target LABELS.npy" in err
    np.save(tmp_path / "short.npy", y[:10])
    code, _, err = run(["train", "--data", "X.npz", "--target", "short.npy"], capsys)
    assert code == 1 and "(10,) labels for the 300 rows" in err


def test_predict_on_the_training_csv_and_on_columns_in_another_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The model file keeps its feature names: predict takes columns by name, ignores the
    target column still in the file, and a headerless training file drops its label column
    (issue 16: `deltaprop predict` on the training CSV said '5 features; the model … takes 4')."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = ["sl", "sw", "pl", "pw"]
    labelled = tmp_path / "iris.csv"
    with labelled.open("w") as f:
        f.write(",".join(names) + ",species\n")
        for x, k in zip(iris.data, iris.target, strict=True):
            f.write(",".join(map(str, x)) + f",{iris.target_names[k]}\n")
    model = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--data", str(labelled), "--target", "species", "--epochs",
                          "3", "--hidden", "6", "--quiet", "--out", str(model)], capsys)
    assert status == 0, err
    assert dp.load(model).feature_names == names
    status, out, err = run(["info", str(model)], capsys)
    assert status == 0 and "features: sl, sw, pl, pw" in out
    status, by_file, err = run(["predict", str(model), str(labelled), "--out", "-"], capsys)
    assert status == 0, err
    shuffled = tmp_path / "reordered.csv"
    order = [3, 0, 2, 1]
    with shuffled.open("w") as f:
        f.write(",".join(names[j] for j in order) + ",id\n")
        for i, x in enumerate(iris.data):
            f.write(",".join(str(x[j]) for j in order) + f",{i}\n")
    status, reordered, err = run(["predict", str(model), str(shuffled), "--out", "-"], capsys)
    assert status == 0, err
    assert reordered == by_file
    expected = dp.load(model).predict(iris.data)
    assert [line.split(",")[0] for line in by_file.splitlines()[1:]] == list(expected)


def test_predict_on_a_headerless_training_file(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    source = tmp_path / "iris.csv"
    with source.open("w") as f:
        for x, k in zip(iris.data, iris.target, strict=True):
            f.write(",".join(map(str, x)) + f",{iris.target_names[k]}\n")
    model = tmp_path / "m.safetensors"
    status, _, err = run(["train", "--data", str(source), "--epochs", "2", "--hidden", "4",
                          "--quiet", "--out", str(model)], capsys)
    assert status == 0, err
    status, out, err = run(["predict", str(model), str(source), "--out", "-"], capsys)
    assert status == 0, err
    rows = out.splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == list(dp.load(model).predict(iris.data))


def test_train_with_dropout_batch_norm_l1_and_max_norm(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The flags reach the network and the optimizer, the file keeps them, info shows them,
    and the command's predictions are dp.load's."""
    out = tmp_path / "m.safetensors"
    status, text, err = run(["train", "--data", "digits", "--hidden", "32,16", "--epochs", "10",
                             "--dropout", "0.2,0.1", "--batch-norm", "--l1", "1e-5",
                             "--max-norm", "3", "--json", "--out", str(out)], capsys)
    assert status == 0, err
    summary = json.loads(text)
    assert summary["network"]["dropout"] == [0.2, 0.1]
    assert summary["network"]["batch_norm"] == [True, True]
    assert summary["network"]["bias"] == ["none", "none", "learned"]
    assert summary["test"]["accuracy"] > 0.85  # 0.913 measured (0.909 without the four flags)
    model = dp.load(out)
    assert model.meta["optimizer"]["l1"] == 1e-5 and model.meta["optimizer"]["max_norm"] == 3
    for layer in model.network.layers:
        assert np.all(np.linalg.norm(layer.W_in, axis=1) <= 3 * (1 + 1e-6))
    status, text, _ = run(["info", str(out), "--json"], capsys)
    layers = json.loads(text)["layers"]
    assert [row["batch_norm"] for row in layers] == [True, True, False]
    assert [row["dropout"] for row in layers] == [0.2, 0.1, 0.0]
    status, text, _ = run(["info", str(out)], capsys)
    assert "batch norm" in text and "dropout" in text
    digits = datasets.load("digits", seed=0)
    status, text, _ = run(["evaluate", str(out), "--data", "digits", "--json"], capsys)
    assert json.loads(text)["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=0)
    assert digits.X_test.shape[0] == json.loads(text)["samples"]


def test_explain_and_gradcheck_with_batch_norm(capsys: pytest.CaptureFixture[str]) -> None:
    status, text, err = run(["gradcheck", "--batch-norm", "--batch", "4", "--sizes", "3,4,2"],
                            capsys)
    assert status == 0, err
    assert "γ" in text and "β" in text and "PASS" in text
    status, _, err = run(["explain", "--model", "m.safetensors", "--data", "digits",
                          "--batch-norm"], capsys)
    assert status == 2 and "--batch-norm applies to the demo network" in one_line_error(err)
