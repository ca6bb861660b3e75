"""Model files: save/load round trips, checkpoints, metadata, atomic writes, torch names."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import io, optim, schedules
from deltaprop.errors import FileWriteError
from deltaprop.training import LambdaCallback

BIAS_MODES = ("learned", "frozen", "none", "unit")


def _net(bias: str = "learned", dtype: str = "float32", seed: int = 0) -> dp.Network:
    net = dp.Network([5, 4, 3, 3], activation=["tanh", "relu"], bias=bias, bias_init=0.25,
                     dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for layer in net.layers:  # non-trivial biases, so a lost bias would show
        if layer.b is not None:
            layer.b[...] = rng.normal(size=layer.b.shape)
        if layer.has_unit:
            layer.W[:, -1] = rng.normal(size=layer.n_out)
    return net


def _same_parameters(a: dp.Network, b: dp.Network) -> None:
    assert [n for n, _ in a.parameters()] == [n for n, _ in b.parameters()]
    for (name, p), (_, q) in zip(a.parameters(), b.parameters(), strict=True):
        assert p.dtype == q.dtype, name
        np.testing.assert_array_equal(p, q, err_msg=name)  # bitwise: a file holds the bits


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", BIAS_MODES)
def test_save_load_round_trip(tmp_path: Path, bias: str, dtype: str) -> None:
    net = _net(bias, dtype)
    model = dp.Model(net, scaler="none", labels=["a", "b", "c"], meta={"data": "toy"})
    path = tmp_path / "m.safetensors"
    model.save(path)
    back = dp.load(path)
    assert isinstance(back, dp.Model)
    assert back.config() == net.config()
    _same_parameters(net, back.network)
    assert list(back.classes) == ["a", "b", "c"]
    assert back.meta == model.meta
    assert back.preprocessing() == model.preprocessing()
    X = np.random.default_rng(1).normal(size=(7, 5)).astype(dtype)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    assert list(back.predict(X)) == list(np.array(["a", "b", "c"])[net.predict(X)])


def test_a_network_saves_as_a_model_without_preprocessing(tmp_path: Path) -> None:
    """net.save → dp.load: a Model whose predict on the same rows is the network's own."""
    net = _net("learned", "float64")
    net.save(tmp_path / "m.safetensors")
    back = dp.load(tmp_path / "m.safetensors")
    assert back.scaler.kind == "none" and back.classes is None
    X = np.random.default_rng(2).normal(size=(6, 5))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


@pytest.mark.parametrize("bias", BIAS_MODES)
def test_tensor_names_are_torch_sequential_names(tmp_path: Path, bias: str) -> None:
    from safetensors.numpy import load_file

    path = tmp_path / "m.safetensors"
    _net(bias).save(path)
    names = set(load_file(path))
    weights = {"0.weight", "2.weight", "4.weight"}
    expected = weights if bias == "none" else weights | {"0.bias", "2.bias", "4.bias"}
    assert names == expected


def test_unit_bias_is_stored_as_linear_bias(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    net = _net("unit")
    path = tmp_path / "m.safetensors"
    net.save(path)
    tensors = load_file(path)
    for i, layer in enumerate(net.layers):
        np.testing.assert_array_equal(tensors[f"{2 * i}.weight"], layer.W[:, :-1])
        np.testing.assert_array_equal(tensors[f"{2 * i}.bias"], layer.W[:, -1])


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam"])
def test_checkpoint_round_trip_with_optimizer_state(tmp_path: Path, name: str) -> None:
    """Save mid-training, load, take more steps: equal to never having stopped (bitwise)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    kwargs = {"momentum": 0.9} if name in ("sgd", "rmsprop") else {}
    net = _net("learned")
    opt = optim.get(name)(lr=0.01, weight_decay=0.01, **kwargs)
    for _ in range(3):
        opt.step(net, net.backprop(X, y))
    path = tmp_path / "ckpt.safetensors"
    arrays = {"extra": np.arange(4.0)}
    io.save(net, path, optimizer=opt, training={"epoch": 3, "note": "x"}, arrays=arrays)
    model2, state, opt2 = io.load_checkpoint(path)
    net2 = model2.network
    assert state["epoch"] == 3 and state["note"] == "x"
    np.testing.assert_array_equal(state["arrays"]["extra"], arrays["extra"])
    assert opt2.state_dict()["hyper"] == opt.state_dict()["hyper"]
    assert opt2.state_dict()["t"] == opt.state_dict()["t"]
    assert net2.rng.bit_generator.state == net.rng.bit_generator.state
    for _ in range(3):
        opt.step(net, net.backprop(X, y))
        opt2.step(net2, net2.backprop(X, y))
    _same_parameters(net, net2)


# Each schedule with state worth saving: the base rate (all), the plateau's counters (its
# threshold makes every epoch after the first a bad one, so it drops every second epoch),
# the samples seen (invscaling), a warm-up handing over to a cosine.
SCHEDULES = {
    "step": lambda: schedules.StepLR(2, gamma=0.5),
    "plateau": lambda: schedules.ReduceLROnPlateau(factor=0.5, patience=1, threshold=0.5),
    "invscaling": lambda: schedules.InverseScalingLR(0.5),
    "warmup-cosine": lambda: schedules.LinearWarmup(2, 0.1, after=schedules.CosineAnnealingLR(4)),
}


def _scheduled_run(path: Path, schedule_name: str, optimizer: str, epochs: int = 6,
                   resume: bool = False, restore_schedule: bool = True
                   ) -> tuple[dp.Network, list[float]]:
    """Train 6 epochs with a schedule, writing a checkpoint after epoch 3; or (``resume``)
    continue from that checkpoint with a new schedule object, given the saved state or not.
    Returns the network and the learning rate of every epoch trained."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    schedule = SCHEDULES[schedule_name]()
    if resume:
        model, state, opt = io.load_checkpoint(path, schedule if restore_schedule else None)
        net, first = model.network, state["epoch"]
    else:
        net, first = _net(), 0
        opt = (optim.SGD(lr=0.05, momentum=0.9) if optimizer == "sgd"
               else optim.Adam(lr=0.01))

    def checkpoint(epoch: int, logs: dict[str, float]) -> None:
        if epoch + 1 == 3:  # fit calls the schedule before the callbacks: the state is epoch 4's
            io.save(net, path, optimizer=opt, training={"epoch": 3}, schedule=schedule)

    history = net.fit(X, y, epochs=epochs, initial_epoch=first, batch_size=8, optimizer=opt,
                      schedule=schedule, callbacks=[LambdaCallback(checkpoint)], verbose=0)
    return net, history.lr


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])  # the fused step and the plain one
@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_checkpoint_resumes_a_schedule_bitwise(tmp_path: Path, schedule_name: str,
                                               optimizer: str) -> None:
    """Interrupted after epoch 3 and resumed to 6: the weights and the rates of epochs 4-6
    are those of the uninterrupted run, bit for bit. Without the saved schedule state the
    resumed run takes other rates (so the state is what makes it exact)."""
    path = tmp_path / "ckpt.safetensors"
    whole, rates = _scheduled_run(path, schedule_name, optimizer)
    assert len(set(rates)) > 1  # the schedule moved the rate
    resumed, rest = _scheduled_run(path, schedule_name, optimizer, resume=True)
    assert rest == rates[3:]
    _same_parameters(whole, resumed)
    _, without_state = _scheduled_run(path, schedule_name, optimizer, resume=True,
                                      restore_schedule=False)
    assert without_state != rates[3:]


def test_a_checkpoint_without_schedule_state_leaves_the_schedule_alone(tmp_path: Path) -> None:
    """Older files (and runs without a schedule) have no schedule state: loading one with a
    schedule leaves that schedule new; a state for another schedule is refused in one line."""
    path = tmp_path / "ckpt.safetensors"
    opt = optim.SGD(lr=0.1)
    io.save(_net(), path, optimizer=opt, training={"epoch": 1})
    schedule = schedules.StepLR(2)
    _, state, _ = io.load_checkpoint(path, schedule)
    assert "schedule" not in state and schedule.base_lr is None
    io.save(_net(), path, optimizer=opt, training={"epoch": 1}, schedule=schedule)
    with pytest.raises(io.ModelFileError, match=r"ckpt\.safetensors: the saved schedule state "
                       r"does not fit CosineAnnealingLR.*'step', not 'cosine'"):
        io.load_checkpoint(path, schedules.CosineAnnealingLR(4))


def test_plain_model_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _net().save(path)
    with pytest.raises(io.ModelFileError, match=r"m\.safetensors.*not a checkpoint"):
        io.load_checkpoint(path)


def test_read_metadata(tmp_path: Path) -> None:
    net = _net("frozen", "float64")
    path = tmp_path / "m.safetensors"
    dp.Model(net, scaler="none", meta={"data": "toy"}).save(path)
    doc = io.read_metadata(path)
    assert doc["format"] == "deltaprop-model"
    assert doc["format_version"] == io.FORMAT_VERSION
    assert doc["deltaprop_version"] == dp.__version__
    assert doc["config"] == net.config()
    assert doc["meta"] == {"data": "toy"}
    assert "training" not in doc


def _rewrite(path: Path, edit) -> None:
    """Apply ``edit`` to the deltaprop JSON document of a model file, keeping its tensors."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(path)
    doc = io.read_metadata(path)
    edit(doc)
    save_file(tensors, path, metadata={"deltaprop": json.dumps(doc)})


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d.update(format_version=io.FORMAT_VERSION + 1), "newer.*upgrade"),
        (lambda d: d.update(format_version="1"), "bad format version"),
        (lambda d: d.update(format="something-else"), "not a deltaprop model"),
        (lambda d: d["config"].update(sizes=[5, 4, 2, 3]), "shape"),
        (lambda d: d["config"].update(dtype="float64"), "float32.*metadata says float64"),
        (lambda d: d["config"].update(activation=["nope", "relu"]), "no valid network"),
        (lambda d: d.pop("config"), "no network configuration"),
        (lambda d: d["preprocessing"].update(labels={"kind": "classes",
                                                     "classes": list("abcdefg")}),
         "class labels list 7 classes; the network has 3"),
        (lambda d: d["preprocessing"].update(input={"kind": "standard", "n_features": 5}),
         "offset"),
        (lambda d: d.pop("preprocessing"), "no preprocessing"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, edit, pattern: str) -> None:
    path = tmp_path / "named-model.safetensors"
    _net().save(path)
    _rewrite(path, edit)
    with pytest.raises(io.ModelFileError, match=pattern) as info:
        dp.load(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert "\n" not in str(info.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(io.ModelFileError, match="no such file"):
        dp.load(tmp_path / "absent.safetensors")
    with pytest.raises(io.ModelFileError, match="folder"):
        dp.load(tmp_path)


def test_header_length_beyond_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(io.ModelFileError, match="bad header length"):
        dp.load(path)


# ------------------------------------------------------------------ atomic writes
class _Killed(BaseException):
    """Stands in for the process dying (SIGKILL, power loss) in the middle of a save."""


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_interrupted_save_keeps_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A save that dies mid-write leaves the previous file bit-identical and no temp file.

    ``KeyboardInterrupt`` (Ctrl-C) is raised at each step of the write: while the bytes go
    out (after part of them reached the temporary file), at the fsync, and at the rename.
    """
    path = tmp_path / "model.safetensors"
    old = _net(seed=1)
    old.save(path)
    before = path.read_bytes()

    if where == "write":
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                raise KeyboardInterrupt

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    else:
        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(os, where, interrupt)
    with pytest.raises(KeyboardInterrupt):
        _net(seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    _same_parameters(dp.load(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_save_into_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match="does not exist") as caught:
        _net().save(tmp_path / "nowhere" / "m.safetensors")
    assert isinstance(caught.value, OSError)  # still the built-in kind a Python user catches


def test_saved_file_gets_a_normal_mode(tmp_path: Path) -> None:
    """mkstemp's 0600 would hide a model from its group; new files get 0644, old keep theirs."""
    path = tmp_path / "m.safetensors"
    _net().save(path)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    _net(seed=3).save(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_checksum_catches_a_flipped_weight_bit(tmp_path: Path) -> None:
    """A flipped mantissa bit is still a finite float: only the checksum can notice it."""
    path = tmp_path / "m.safetensors"
    _net().save(path)
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(io.ModelFileError, match="checksum"):
        dp.load(path)


# ------------------------------------------------------------------ torch can read the file
TORCH_ACTIVATIONS = {
    "relu": lambda nn: nn.ReLU(),
    "tanh": lambda nn: nn.Tanh(),
    "sigmoid": lambda nn: nn.Sigmoid(),
    "leaky_relu": lambda nn: nn.LeakyReLU(0.01),
    "elu": lambda nn: nn.ELU(1.0),
    "softplus": lambda nn: nn.Softplus(1.0),
    "gelu": lambda nn: nn.GELU(approximate="tanh"),
    "identity": lambda nn: nn.Identity(),
    "softmax": lambda nn: nn.Softmax(dim=1),
}


@pytest.mark.parametrize(
    ("bias", "activations", "output"),
    [
        ("learned", ["relu", "tanh"], "softmax"),
        ("none", ["gelu", "elu"], "sigmoid"),
        ("unit", ["leaky_relu", "softplus"], "identity"),
        ("frozen", ["sigmoid", "relu"], "softmax"),
    ],
)
def test_torch_sequential_loads_the_weights(tmp_path: Path, bias: str,
                                            activations: list[str], output: str) -> None:
    """nn.Sequential(Linear, σ, Linear, σ, Linear, σ_out).load_state_dict(file): same outputs.

    float32 on both sides; the two libraries sum the products in different orders, so
    outputs of order 1 agree to a few float32 ulps — 1e-5 absolute (the issue's bound) is
    ~80 ulps of slack.
    """
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    nn = torch.nn
    loss = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy",
            "identity": "mse"}[output]
    net = dp.Network([6, 8, 5, 3], activation=activations, output=output, loss=loss,
                     bias=bias, bias_init=0.1, seed=4)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.integers(0, 2, size=(32, 3)) if output == "sigmoid" else (
        rng.integers(0, 3, size=32) if output == "softmax" else rng.normal(size=(32, 3)))
    opt = optim.Adam(lr=0.05)
    for _ in range(5):  # move every parameter (learned biases too) off its initial value
        opt.step(net, net.backprop(X, y))
    path = tmp_path / "m.safetensors"
    net.save(path)

    modules: list[Any] = []
    sizes = [6, 8, 5, 3]
    for i, name in enumerate([*activations, output]):
        modules += [nn.Linear(sizes[i], sizes[i + 1], bias=bias != "none"),
                    TORCH_ACTIVATIONS[name](nn)]
    model = nn.Sequential(*modules)
    model.load_state_dict(load_file(path), strict=True)
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, net.predict_proba(X), rtol=0, atol=1e-5)
    if output == "softmax":
        assert list(out.argmax(axis=1)) == list(net.predict(X))


# ------------------------------------------------------------------ files from format 1
DATA = Path(__file__).parent / "data"  # written by deltaprop's format 1: see data/README.md


def _predictions_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """(first column, the other columns as floats) of a predictions CSV."""
    lines = path.read_text().splitlines()[1:]
    rows = [line.split(",") for line in lines]
    return [r[0] for r in rows], np.array([[float(v) for v in r[1:]] for r in rows])


def test_format_1_regressor_predicts_what_it_predicted(tmp_path: Path) -> None:
    """A format-1 file kept its scalers in the metadata: dp.load applies them now, so its
    predict on raw rows is what `deltaprop predict` printed before (6 significant digits)."""
    model = dp.load(DATA / "diabetes-v1.safetensors")
    assert model.scaler.kind == "standard" and model.target_scaler.kind == "standard"
    assert "preprocessing" not in model.meta and "target_scaling" not in model.meta
    X = np.loadtxt(DATA / "diabetes-rows.csv", delimiter=",", skiprows=1)
    first, _ = _predictions_csv(DATA / "diabetes-v1-predictions.csv")
    np.testing.assert_allclose(model.predict(X)[:, 0], [float(v) for v in first], rtol=5e-6)


@pytest.mark.parametrize("name", ["iris-v1", "iris-v1.ckpt"])
def test_format_1_classifier_predicts_what_it_predicted(name: str) -> None:
    model = dp.load(DATA / f"{name}.safetensors")
    X = np.loadtxt(DATA / "iris-rows.csv", delimiter=",", skiprows=1)
    labels, proba = _predictions_csv(DATA / f"{name.replace('.', '-')}-predictions.csv")
    assert list(model.predict(X)) == labels
    np.testing.assert_allclose(model.predict_proba(X), proba, rtol=5e-6, atol=5e-7)


def test_format_1_checkpoint_resumes_bitwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Resuming a format-1 checkpoint (optimizer state named by position, SGD's buffer "b")
    ends exactly where that version's uninterrupted run ended — on the plain path, which
    that version took. The fused SGD step (the default now) adds each product into the
    momentum buffer unrounded, so it ends there to float32 rounding."""
    from conftest import run_cli
    from deltaprop import fused

    def resumed(name: str) -> dp.Network:
        out = tmp_path / name
        status, _, err = run_cli(
            ["train", "--data", "iris", "--hidden", "6", "--epochs", "6", "--optimizer", "sgd",
             "--checkpoint-every", "3", "--resume", str(DATA / "iris-v1.ckpt.safetensors"),
             "--out", str(out), "--quiet"], capsys)
        assert status == 0, err
        return dp.load(out).network

    then = dp.load(DATA / "iris-v1-6epochs.safetensors").network
    fused_net = resumed("fused.safetensors")
    monkeypatch.setattr(fused, "unsupported", lambda *args: "the plain path, as format 1's")
    _same_parameters(then, resumed("plain.safetensors"))
    # 12 steps of float32 (ε = 1.2e-7 relative), each rounding differently: 1e-5 relative
    for (name, p), (_, q) in zip(then.parameters(), fused_net.parameters(), strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6, err_msg=name)
