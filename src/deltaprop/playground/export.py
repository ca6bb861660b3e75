"""Export: the playground's network as a model file, its data as CSV, and a Python snippet
that reproduces the run with the library.

:func:`write_model` is the one place a model file is written: a :class:`deltaprop.Model`
of the snapshot's network with the data's class names, no scaling (the playground trains on
the feature values as they are) and the playground's notes in ``meta`` (the features, the
settings, the step).

The snippet replays the run's log (see ``session``): the same data, the same network, then
one ``Network.fit`` call per segment, stopped after the segment's steps, with hand edits in
between. Because each segment starts a fresh epoch in the playground too, the replay takes
exactly the playground's steps: its parameters equal the API's (tested).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from deltaprop import __version__
from deltaprop.model import Model
from deltaprop.playground import data as plane
from deltaprop.playground.session import Snapshot, make_optimizer, n_outputs, targets

DATA_FILE = "playground-data.csv"


def model_meta(snap: Snapshot) -> dict[str, Any]:
    """What the model file records about the playground run."""
    config = snap.config
    return {
        "data": snap.data.name,
        "data_seed": config["data_seed"],
        "task": snap.data.task,
        "feature_shape": [len(config["features"])],
        "features": list(config["features"]),
        "optimizer": {"name": config["optimizer"], "lr": config["lr"]},
        "batch_size": config["batch_size"],
        "epochs": snap.epoch,
        "playground": {"step": snap.step, "config": config},
    }


def write_model(snap: Snapshot, path: str | os.PathLike[str]) -> None:
    """Write the snapshot's network to ``path`` as a ``.safetensors`` model file."""
    # trained on class indices; the names in output order make predict answer with them
    # and `deltaprop evaluate --data NAME` match them, as for `deltaprop train`
    classes = None if snap.data.classes is None else list(snap.data.classes)
    model = Model(snap.net, scaler="none", target_scaler=None, labels=classes,
                  feature_names=list(snap.config["features"]), meta=model_meta(snap))
    model.save(path)


def model_bytes(snap: Snapshot) -> bytes:
    """The model file's bytes (written through :func:`write_model`)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "playground.safetensors"
        write_model(snap, path)
        return path.read_bytes()


def _generated(snap: Snapshot) -> bool:
    return snap.data.name != "csv" and snap.data.added == 0


def _call(name: str, args: dict[str, Any]) -> str:
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"


def _optimizer(settings: dict[str, Any]) -> str:
    opt = make_optimizer(settings)
    return f"dp.optim.{type(opt).__name__}(" + ", ".join(
        f"{k}={v!r}" for k, v in opt.hyperparameters().items()) + ")"


def _hooked(event: dict[str, Any]) -> bool:
    """Whether a train segment needs the playground's gradient hook (L1, the wrong rule)."""
    return bool(event["l1"]) or event["bias_rule"] != "delta"


def snippet(snap: Snapshot) -> str:
    """Python source that rebuilds the data and network and replays the run's steps."""
    config, d = snap.config, snap.data
    needs_numpy = not _generated(snap) or targets(config, d, d.y_train[:1]).ndim == 2
    needs_hook = any(e["kind"] == "train" and _hooked(e) for e in snap.log)
    lines = [
        f'"""Reproduces a deltaprop playground run: {d.name}, {snap.step} steps '
        f'(deltaprop {__version__})."""',
        "import math", "",
        *(["import numpy as np", ""] if needs_numpy else []),
        "import deltaprop as dp",
        "from deltaprop.playground import data, features" if _generated(snap)
        else "from deltaprop.playground import features",
        *(["from deltaprop.playground.trainer import gradient_hook"] if needs_hook else []),
        "from deltaprop.training import LambdaCallback", "",
    ]
    if _generated(snap):
        keys = ("dataset", "n_samples", "n_classes", "noise", "test_size", "data_seed")
        lines.append(f"d = data.generate({ {k: config[k] for k in keys}!r})")
        lines.append("points_train, y_train, points_test, y_test = "
                     "d.X_train, d.y_train, d.X_test, d.y_test")
    else:
        cast = ".astype(np.int64)" if d.task == "classification" else ""
        lines += [
            "# the points, as the playground's /api/export/data.csv saved them",
            f'table = np.loadtxt("{DATA_FILE}", delimiter=",", skiprows=1, usecols=(0, 1, 2))',
            f'train = np.loadtxt("{DATA_FILE}", delimiter=",", skiprows=1, usecols=3, '
            f'dtype=str) == "train"',
            "points_train, points_test = table[train, :2], table[~train, :2]",
            f"y_train, y_test = table[train, 2]{cast}, table[~train, 2]{cast}",
        ]
    if targets(config, d, d.y_train[:1]).ndim == 2:  # one-hot rows
        lines.append(f"y_train, y_test = np.eye({d.n_classes})[y_train], "
                     f"np.eye({d.n_classes})[y_test]")
    lines += [
        f"X_train = features.transform(points_train, {config['features']!r})",
        f"X_test = features.transform(points_test, {config['features']!r})",
        "net = " + _call("dp.Network", {
            "sizes": [len(config["features"]), *config["hidden"], n_outputs(config, d)],
            "activation": config["activation"], "output": config["output"],
            "loss": config["loss"], "bias": config["bias"], "bias_init": config["bias_init"],
            "init": config["init"], "dtype": config["dtype"], "seed": config["seed"]}),
        "", "",
        "def run(steps, batch_size, **kwargs):",
        '    """`steps` mini-batch steps of fit; each call starts a fresh epoch."""',
        "    n_batches = math.ceil(len(X_train) / min(batch_size, len(X_train)))",
        "    stop = LambdaCallback(on_batch_end=lambda epoch, batch, loss:",
        "                          epoch * n_batches + batch + 1 >= steps)",
        "    net.fit(X_train, y_train, epochs=math.ceil(steps / n_batches), "
        "batch_size=batch_size,",
        "            callbacks=[stop], verbose=0, **kwargs)",
        "", "",
    ]
    current: dict[str, Any] | None = None
    for event in snap.log:
        if event["kind"] == "edit":
            index = ", ".join(map(str, event["index"]))
            lines.append(f"net.layers[{event['layer']}].{event['name']}[{index}] = "
                         f"{event['value']!r}  # set by hand")
            continue
        if event["kind"] == "new_optimizer":
            current = None
            continue
        if event["kind"] == "diverged":
            lines.append("# the playground run diverged here; it went back to the last finite "
                         "weights, which fit does not do")
            continue
        if current is None or current["optimizer"] != event["optimizer"]:
            lines.append(f"opt = {_optimizer(event)}")
        else:
            old = make_optimizer(current).hyperparameters()
            for key, value in make_optimizer(event).hyperparameters().items():
                if old[key] != value:
                    lines.append(f"opt.{key} = {value!r}")
        current = event
        hook = (f", gradient_hook=gradient_hook(net, {event['l1']!r}, {event['decay_bias']!r}, "
                f"{event['bias_rule']!r})" if _hooked(event) else "")
        lines.append(f"run({event['steps']}, batch_size={event['batch_size']}, optimizer=opt, "
                     f"reduction={event['reduction']!r}{hook})")
    lines += ["", "print(net.evaluate(X_test, y_test))", ""]
    return "\n".join(lines)


def data_csv(snap: Snapshot) -> str:
    """The training and test points as CSV (x1, x2, label, split)."""
    return plane.to_csv(snap.data)
