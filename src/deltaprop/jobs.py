"""What the commands do: load data, build, train, save, report — the CLI's work as functions.

``cli`` parses the command line and calls these; they return plain, JSON-friendly results
and raise the library's errors for bad input. The ``print_*`` functions render results with
rich on standard output.
"""

from __future__ import annotations

import io as _stdio
from pathlib import Path
from typing import Any

import numpy as np

from deltaprop import datasets, io, optim, training
from deltaprop.errors import ConfigError
from deltaprop.network import Network

DEFAULT_LR = {"sgd": 0.05}  # every other optimizer: 1e-3
VALIDATION_SEED_OFFSET = 1  # the validation split draws from Generator([seed, 1])


def data_seed(net: Network) -> int:
    """The seed the model's training data was split with, so its test split is the same."""
    seed = net.meta.get("data_seed", 0)
    return seed if isinstance(seed, int) and seed >= 0 else 0


def checkpoint_path(out: str) -> str:
    """``model.safetensors`` → ``model.ckpt.safetensors``."""
    p = Path(out)
    return str(p.with_name(p.stem + ".ckpt" + (p.suffix or ".safetensors")))


class Checkpoint(training.Callback):
    """Writes model, optimizer state, history and generator state every ``every`` epochs."""

    def __init__(self, path: str, every: int, net: Network, optimizer: optim.Optimizer,
                 history: training.History, stopper: training.EarlyStopping | None,
                 args: dict[str, Any], classes: np.ndarray | None) -> None:
        self.path, self.every, self.net, self.optimizer = path, every, net, optimizer
        self.history, self.stopper, self.args, self.classes = history, stopper, args, classes

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every:
            return
        state: dict[str, Any] = {"epoch": epoch + 1, "history": self.history.as_dict(),
                                 "args": self.args}
        arrays: dict[str, np.ndarray] = {}
        if self.stopper is not None:
            state["early_stopping"] = self.stopper.state()
            arrays = {f"best.{k}": p for k, p in enumerate(self.stopper.best_params)}
        # fit trains on class indices; the file carries the names, so a checkpoint predicts
        # like a finished model.
        in_training, self.net.classes = self.net.classes, self.classes
        self.net.meta["epochs"] = epoch + 1
        try:
            io.save(self.net, self.path, optimizer=self.optimizer, training=state, arrays=arrays)
        finally:
            self.net.classes = in_training


def _prepared(args: dict[str, Any]) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The data set, scaled on its training split, with a validation split held out."""
    data = datasets.load(args["data"], data_dir=args["data_dir"], seed=args["seed"],
                         dtype=args["dtype"], target=args.get("target"))
    scaler = datasets.default_scaler(data.name).fit(data.X_train)
    arrays: dict[str, Any] = {
        "X_test": scaler.transform(data.X_test, args["dtype"]),
        "y_test": data.y_test,
        "scaler": scaler,
    }
    X_train = scaler.transform(data.X_train, args["dtype"])
    y_train = data.y_train
    if data.task == "regression":
        # Targets in their own units (diabetes: 25-346) make the first gradients huge and
        # the learning rate data-dependent; the network learns standardised targets and
        # `predict` maps its outputs back (meta["target_scaling"]).
        target_scaler = datasets.Scaler("standard").fit(_columns(y_train))
        y_train = target_scaler.transform(_columns(y_train), args["dtype"])
        arrays["target_scaler"] = target_scaler
    rng = np.random.default_rng([args["seed"], VALIDATION_SEED_OFFSET])
    if args["val_split"] > 0:
        X_tr, y_tr, X_val, y_val = datasets.train_val_split(
            X_train, y_train, args["val_split"], rng
        )
        arrays.update(X_train=X_tr, y_train=y_tr, validation=(X_val, y_val))
    else:
        arrays.update(X_train=X_train, y_train=y_train, validation=None)
    return data, arrays


def _columns(y: np.ndarray) -> np.ndarray:
    """Regression targets as an (n, n_outputs) matrix."""
    return y.reshape(len(y), -1)


def regression_outputs(net: Network, X: np.ndarray) -> np.ndarray:
    """The network's outputs in the targets' own units (undoing meta["target_scaling"])."""
    outputs = net.predict(X)
    scaling = net.meta.get("target_scaling")
    if scaling:
        try:
            target = datasets.Scaler.from_dict(scaling)
        except datasets.DataError as e:
            raise io.ModelFileError(f"bad target_scaling metadata ({e})") from None
        outputs = outputs * np.asarray(target.scale) + np.asarray(target.offset)
    return outputs


def regression_metrics(net: Network, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss (½‖a − y‖² per sample, as `mse`), RMSE and R², in the targets' own units."""
    Y = _columns(np.asarray(y, dtype=np.float64))
    error = regression_outputs(net, X) - Y
    loss = float(0.5 * np.mean(np.sum(error * error, axis=1)))
    residual = float(np.sum(error * error))
    total = float(np.sum((Y - Y.mean(axis=0)) ** 2))
    return {"loss": loss, "rmse": float(np.sqrt(np.mean(error * error))),
            "r2": 1 - residual / total if total > 0 else float("nan")}


def _network(args: dict[str, Any], data: datasets.Dataset) -> Network:
    classification = data.task == "classification"
    output = args["output"] or ("softmax" if classification else "identity")
    loss = args["loss"] or ("cross_entropy" if classification else "mse")
    n_out = data.n_outputs
    if classification and loss == "binary_cross_entropy" and n_out == 2:
        n_out = 1
    return Network(
        [data.n_features, *args["hidden"], n_out], activation=args["activation"],
        output=output, loss=loss, bias=args["bias"], bias_init=args["bias_init"],
        init=args["init"], dtype=args["dtype"], seed=args["seed"],
    )


def _optimizer(args: dict[str, Any]) -> optim.Optimizer:
    name = args["optimizer"]
    cls = optim.get(name)
    kwargs: dict[str, Any] = {
        "lr": args["lr"] if args["lr"] is not None else DEFAULT_LR.get(name, 1e-3),
        "weight_decay": args["weight_decay"],
        "decay_bias": args["decay_bias"],
    }
    if args["momentum"] is not None:
        if name not in ("sgd", "rmsprop"):
            raise ConfigError(f"`--momentum` applies to sgd and rmsprop, not {name}")
        kwargs["momentum"] = args["momentum"]
    elif name == "sgd":
        kwargs["momentum"] = 0.9
    return cls(**kwargs)


# Options that describe the run itself; on --resume the checkpoint's values are used.
_RUN_OPTIONS = ("data", "data_dir", "target", "hidden", "activation", "output", "loss",
                "optimizer", "lr", "momentum", "batch_size", "epochs", "bias", "bias_init",
                "init", "weight_decay", "decay_bias", "reduction", "dtype", "seed",
                "val_split", "patience", "checkpoint_every")


# What --resume may change: how long to go on, and when to stop early.
_RESUMABLE_OPTIONS = {"epochs", "patience", "checkpoint_every"}


def train(opts: dict[str, Any]) -> dict[str, Any]:
    """``deltaprop train``: returns the JSON summary (history, test metrics, model path)."""
    args = dict(opts)
    state: dict[str, Any] | None = None
    if args.get("resume"):
        net, state, optimizer = io.load_checkpoint(args["resume"])
        saved = state.get("args", {})
        explicit = args.get("_explicit", set())
        fixed = sorted(explicit & (set(_RUN_OPTIONS) - _RESUMABLE_OPTIONS))
        if fixed:
            raise ConfigError(
                f"{args['resume']}: --{fixed[0].replace('_', '-')} cannot change when resuming; "
                "the checkpoint's settings are used (only --epochs, --patience and output "
                "options may change)"
            )
        for key in _RUN_OPTIONS:
            if key in saved and key not in explicit:
                args[key] = saved[key]
    for key, minimum in (("epochs", 1), ("batch_size", 0)):
        if args[key] < minimum:
            raise ConfigError(f"`--{key.replace('_', '-')}` must be >= {minimum}; got {args[key]}")
    if not 0 <= args["val_split"] < 1:
        raise ConfigError(f"`--val-split` must be in [0, 1); got {args['val_split']}")

    data, split = _prepared(args)
    history = training.History()
    stopper = None
    if state is None:
        net = _network(args, data)
        optimizer = _optimizer(args)
        initial_epoch = 0
    else:
        if net.n_inputs != data.n_features:
            raise ConfigError(
                f"{args['resume']}: the network takes {net.n_inputs} inputs; "
                f"{data.name} has {data.n_features} features"
            )
        history = training.History.from_dict(state.get("history", {}))
        initial_epoch = int(state["epoch"])
        if "early_stopping" in state:
            best = [state["arrays"][f"best.{k}"] for k in range(len(net.parameters()))
                    if f"best.{k}" in state["arrays"]]
            stopper = training.EarlyStopping.from_state(state["early_stopping"], best)
    if stopper is None and args["patience"] is not None:
        stopper = training.EarlyStopping(args["patience"])
    net.meta = _model_meta(args, data, split, optimizer, history)  # checkpoints too
    net.classes = None  # fit sees class indices; the names are attached after
    callbacks: list[training.Callback] = []
    if args.get("checkpoint_every"):
        path = args.get("checkpoint_path") or checkpoint_path(args["out"])
        run_args = {k: args[k] for k in _RUN_OPTIONS}
        names = None if data.class_names is None else np.asarray(data.class_names)
        callbacks.append(Checkpoint(path, args["checkpoint_every"], net, optimizer, history,
                                    stopper, run_args, names))
    quiet = args.get("quiet") or args.get("as_json")
    fit, root = training.fit, True
    if args.get("distributed"):  # under mpirun: rank 0 alone checkpoints, saves and plots
        from deltaprop import distributed

        fit, root = distributed.fit, distributed.is_root()
    fit(
        net, split["X_train"], split["y_train"], epochs=args["epochs"],
        batch_size=args["batch_size"] or None, optimizer=optimizer,
        reduction=args["reduction"], validation_data=split["validation"],
        early_stopping=stopper, callbacks=callbacks, verbose=0 if quiet else 1,
        initial_epoch=initial_epoch, history=history,
    )
    net.classes = None if data.class_names is None else np.asarray(data.class_names)
    net.meta = _model_meta(args, data, split, optimizer, history)
    if "target_scaler" in split:
        test = regression_metrics(net, split["X_test"], data.y_test)
    else:
        test = net.evaluate(split["X_test"], np.asarray(data.class_names)[data.y_test])
    net.meta["test"] = test
    if root:
        io.save(net, args["out"])
    if args.get("plot") and root:
        plot_history(history, args["plot"])
    return {
        "data": data.name,
        "network": net.config(),
        "parameters": net.n_parameters(),
        "history": history.as_dict(),
        "test": test,
        "model": args["out"],
    }


def _model_meta(args: dict[str, Any], data: datasets.Dataset, split: dict[str, Any],
                optimizer: optim.Optimizer, history: training.History) -> dict[str, Any]:
    """What a model file says about its training: data, scaling, optimizer, epochs."""
    meta = {
        "data": data.name,
        "data_seed": args["seed"],  # the split (and synthetic points) depend on it
        "task": data.task,
        "feature_shape": list(data.feature_shape),
        "preprocessing": split["scaler"].to_dict(),
        "optimizer": optimizer.hyperparameters() | {"name": optimizer.name},
        "epochs": len(history.epoch),
        "batch_size": args["batch_size"],
    }
    if "target_scaler" in split:
        meta["target_scaling"] = split["target_scaler"].to_dict()
    return meta


def plot_history(history: training.History, path: str) -> None:
    """Loss (and accuracy) per epoch, training vs validation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [e + 1 for e in history.epoch]
    panels = [("loss", "val_loss")] + ([("accuracy", "val_accuracy")] if history.accuracy else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (train_key, val_key) in zip(axes[0], panels, strict=True):
        ax.plot(epochs, getattr(history, train_key), label="train")
        if getattr(history, val_key):
            ax.plot(epochs, getattr(history, val_key), label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(train_key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buffer = _stdio.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    io.write_atomically(Path(path), buffer.getvalue())


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def print_history(summary: dict[str, Any]) -> None:
    """The per-epoch table of a training run."""
    from rich.table import Table

    h = summary["history"]
    table = Table(title=f"training on {summary['data']}")
    columns = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if h[k]]
    for name in ("epoch", *columns, "lr", "seconds"):
        table.add_column(name, justify="right")
    for row, epoch in enumerate(h["epoch"]):
        cells = [str(epoch + 1)] + [f"{h[c][row]:.4f}" for c in columns]
        table.add_row(*cells, f"{h['lr'][row]:g}", f"{h['seconds'][row]:.2f}")
    _console().print(table)


# ------------------------------------------------------------------------ evaluate / predict
def _model_and_scaler(model: str) -> tuple[Network, datasets.Scaler]:
    net = io.load(model)
    prep = net.meta.get("preprocessing")
    try:
        scaler = datasets.Scaler.from_dict(prep) if prep else datasets.Scaler("none")
    except datasets.DataError as e:
        raise io.ModelFileError(f"{model}: bad preprocessing metadata ({e})") from None
    return net, scaler


def _transform(scaler: datasets.Scaler, X: np.ndarray, net: Network, source: str,
               model: str) -> np.ndarray:
    if X.ndim != 2 or X.shape[1] != net.n_inputs:
        raise datasets.DataError(
            f"{source}: {X.shape[1] if X.ndim == 2 else '?'} features; the model {model} "
            f"takes {net.n_inputs}"
        )
    return scaler.transform(X, net.dtype.name)


def evaluate(model: str, data: str, data_dir: str | None, target: str | None,
             split: str) -> dict[str, Any]:
    """``deltaprop evaluate``: loss, accuracy and confusion matrix on a data set split."""
    from deltaprop import metrics

    net, scaler = _model_and_scaler(model)
    ds = datasets.load(data, data_dir=data_dir, dtype=net.dtype.name, target=target,
                       seed=data_seed(net))
    X, y = (ds.X_test, ds.y_test) if split == "test" else (ds.X_train, ds.y_train)
    X = _transform(scaler, X, net, ds.name, model)
    result: dict[str, Any] = {"model": model, "data": ds.name, "split": split, "samples": len(X)}
    if net.is_classifier:
        labels = np.asarray(ds.class_names)[y] if ds.class_names is not None else y
        result.update(net.evaluate(X, labels))
        true = net.encode_labels(labels)
        pred = net.encode_labels(net.predict(X))
        result["classes"] = [str(c) for c in (net.classes if net.classes is not None
                                              else range(net.n_classes))]
        result["confusion_matrix"] = metrics.confusion_matrix(true, pred, net.n_classes).tolist()
    else:
        result.update(regression_metrics(net, X, y))
    return result


def print_evaluation(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    line = f"{result['data']} ({result['split']}, {result['samples']} samples): "
    line += f"loss {result['loss']:.4f}"
    if "accuracy" in result:
        line += f", accuracy {result['accuracy']:.4f}"
    if "r2" in result:
        line += f", RMSE {result['rmse']:.4g}, R² {result['r2']:.4f}"
    console.print(line)
    if "confusion_matrix" in result:
        table = Table(title="confusion matrix (rows: true, columns: predicted)")
        table.add_column("")
        for c in result["classes"]:
            table.add_column(c, justify="right")
        for c, row in zip(result["classes"], result["confusion_matrix"], strict=True):
            table.add_row(c, *(str(v) for v in row))
        console.print(table)


def predict_csv(model: str, source: str) -> str:
    """``deltaprop predict``: CSV text with a prediction (and probabilities) per sample."""
    import csv

    net, scaler = _model_and_scaler(model)
    X = datasets.load_features(source, dtype=net.dtype.name)
    X = _transform(scaler, X.reshape(len(X), -1), net, source, model)
    out = _stdio.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if net.is_classifier:
        proba = net.predict_proba(X)
        names = [str(c) for c in (net.classes if net.classes is not None
                                  else range(net.n_classes))]
        if net.n_outputs == 1:
            proba = np.hstack([1 - proba, proba])
        writer.writerow(["prediction", *(f"p_{n}" for n in names)])
        for label, row in zip(net.predict(X), proba, strict=True):
            writer.writerow([label, *(f"{p:.6g}" for p in row)])
    else:
        outputs = regression_outputs(net, X)
        writer.writerow([f"output_{k}" for k in range(outputs.shape[1])])
        for row in outputs:
            writer.writerow([f"{v:.6g}" for v in row])
    return out.getvalue()


# ------------------------------------------------------------------------ info
def info(model: str) -> dict[str, Any]:
    """``deltaprop info``: the model's layers, parameter counts and metadata."""
    net, doc = io.load_with_metadata(model)
    layers = []
    for i, layer in enumerate(net.layers):
        layers.append({
            "layer": i + 1,
            "inputs": layer.n_in,
            "neurons": layer.n_out,
            "activation": layer.activation.name,
            "bias": layer.bias,
            "weights": layer.n_in * layer.n_out,
            "biases": layer.n_out if layer.bias != "none" else 0,
        })
    return {
        "model": model,
        "format_version": doc["format_version"],
        "deltaprop_version": doc.get("deltaprop_version"),
        "config": net.config(),
        "parameters": net.n_parameters(),
        "layers": layers,
        "classes": None if net.classes is None else [str(c) for c in net.classes],
        "meta": net.meta,
        "checkpoint": "training" in doc,
    }


def print_info(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    cfg = result["config"]
    console.print(f"{result['model']}: deltaprop model, format {result['format_version']}, "
                  f"{cfg['dtype']}, loss {cfg['loss']}, {result['parameters']} parameters")
    table = Table()
    for name in ("layer", "inputs", "neurons", "activation", "bias", "weights", "biases"):
        table.add_column(name, justify="right")
    for row in result["layers"]:
        table.add_row(*(str(row[k]) for k in ("layer", "inputs", "neurons", "activation",
                                              "bias", "weights", "biases")))
    console.print(table)
    meta = result["meta"]
    if meta:
        for key in ("data", "task", "epochs", "batch_size", "optimizer", "test"):
            if key in meta:
                console.print(f"{key}: {meta[key]}")
    if result["classes"]:
        console.print(f"classes: {', '.join(result['classes'])}")
