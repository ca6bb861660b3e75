"""What the commands do: load data, build, train, save, report — the CLI's work as functions.

``cli`` parses the command line into typed options (:class:`TrainOptions`) and calls these;
they return plain, JSON-friendly results and raise the library's errors (DeltapropError)
for bad input. The ``print_*`` functions render results with rich on standard output.

Everything here works on a :class:`~deltaprop.model.Model`: the data's scaling, the target
standardisation and the class names are fitted with the network and saved with it, so the
command, ``dp.load(...).predict`` and the ONNX export answer the same on raw rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from deltaprop import datasets, figures, io, optim, schedules, training
from deltaprop._validation import is_scipy_sparse
from deltaprop.errors import ConfigError, DataError
from deltaprop.model import Model
from deltaprop.network import Network
from deltaprop.preprocessing import LabelEncoder

#: The command's own defaults where they differ from the library's (say so in --help):
#: ``--optimizer sgd`` trains with lr 0.05 and momentum 0.9, where ``optim.SGD()`` is plain
#: SGD (lr 0.01, momentum 0) as torch.optim.SGD. Every other optimizer: lr 1e-3.
DEFAULT_LR = {"sgd": 0.05}
DEFAULT_SGD_MOMENTUM = 0.9
VALIDATION_SEED_OFFSET = 1  # the validation split draws from Generator([seed, 1])


@dataclass(frozen=True)
class TrainOptions:
    """``deltaprop train``'s settings (DESIGN.md §5), as the command line gave them.

    ``explicit`` names the options given on the command line (the rest are defaults): on
    ``--resume`` the checkpoint's values stand in for the defaults, and an explicit value
    that differs from the checkpoint's is refused.
    """

    data: str = "digits"
    data_dir: str | None = None
    target: str | None = None
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    output: str | None = None
    loss: str | None = None
    optimizer: str = "adam"
    lr: float | None = None
    schedule: str = "constant"  # or "cosine": η annealed from --lr to 0 over --epochs
    momentum: float | None = None
    batch_size: int = 32
    epochs: int = 30
    bias: str | None = None  # learned, but none in batch-normalised layers
    bias_init: float = 0.0
    init: str = "he_normal"
    weight_decay: float = 0.0
    decay_bias: bool = False
    dropout: tuple[float, ...] = ()  # one p for every hidden layer, or one per hidden layer
    l1: float = 0.0
    max_norm: float | None = None
    batch_norm: bool = False
    reduction: str = "mean"
    dtype: str = "float32"
    seed: int = 0
    val_split: float = 0.1
    patience: int | None = None
    out: str = "model.safetensors"
    checkpoint_every: int | None = None
    checkpoint_path: str | None = None
    resume: str | None = None
    plot: str | None = None
    as_json: bool = False
    quiet: bool = False
    distributed: bool = False
    explicit: frozenset[str] = field(default_factory=frozenset)

    def run_settings(self) -> dict[str, Any]:
        """The options that describe the run itself (saved in checkpoints)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items() if k in RUN_OPTIONS}


# Options that describe the run itself; on --resume the checkpoint's values are used.
RUN_OPTIONS = ("data", "data_dir", "target", "hidden", "activation", "output", "loss",
               "optimizer", "lr", "schedule", "momentum", "batch_size", "epochs", "bias",
               "bias_init",
               "init", "weight_decay", "decay_bias", "dropout", "l1", "max_norm",
               "batch_norm", "reduction", "dtype", "seed", "val_split", "patience",
               "checkpoint_every")

# What --resume may change: how long to go on, and when to stop early.
RESUMABLE_OPTIONS = {"epochs", "patience", "checkpoint_every"}


def checkpoint_path(out: str) -> str:
    """``model.safetensors`` → ``model.ckpt.safetensors``."""
    p = Path(out)
    return str(p.with_name(p.stem + ".ckpt" + (p.suffix or ".safetensors")))


class Checkpoint(training.Callback):
    """Writes the model, optimizer and schedule state, history and generator state every
    ``every`` epochs."""

    def __init__(self, path: str, every: int, model: Model, optimizer: optim.Optimizer,
                 history: training.History, stopper: training.EarlyStopping | None,
                 settings: dict[str, Any], schedule: schedules.Schedule | None = None) -> None:
        self.path, self.every, self.model, self.optimizer = path, every, model, optimizer
        self.history, self.stopper, self.settings = history, stopper, settings
        self.schedule = schedule

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every:
            return
        state: dict[str, Any] = {"epoch": epoch + 1, "history": self.history.as_dict(),
                                 "args": self.settings}
        arrays: dict[str, np.ndarray] = {}
        if self.stopper is not None:
            state["early_stopping"] = self.stopper.state()
            arrays = {f"best.{k}": p for k, p in enumerate(self.stopper.best_params)}
        self.model.meta["epochs"] = epoch + 1
        self.model.save(self.path, optimizer=self.optimizer, training=state, arrays=arrays,
                        schedule=self.schedule)


def _resumed(options: TrainOptions) -> tuple[TrainOptions, Model, dict[str, Any], Any]:
    """The checkpoint's model, state and optimizer, and the options with its settings.

    An option given on the command line that differs from the checkpoint's is refused,
    naming both values; the same value is fine (so the first command line plus
    ``--resume`` works).
    """
    model, state, optimizer = io.load_checkpoint(options.resume)
    saved = state.get("args", {})
    settings = options.run_settings()
    for key in sorted(options.explicit & (set(RUN_OPTIONS) - RESUMABLE_OPTIONS)):
        if key in saved and saved[key] != settings[key]:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"{options.resume}: {flag} cannot change when resuming (the checkpoint has "
                f"{_shown(saved[key])}, the command line {_shown(settings[key])}); only "
                "--epochs, --patience and output options may change"
            )
    changes = {k: (tuple(v) if k in ("hidden", "dropout") else v) for k, v in saved.items()
               if k in RUN_OPTIONS and k not in options.explicit}
    return replace(options, **changes), model, state, optimizer


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else repr(value)


def _network(options: TrainOptions, data: datasets.Dataset) -> Network:
    classification = data.task == "classification"
    output = options.output or ("softmax" if classification else "identity")
    loss = options.loss or ("cross_entropy" if classification else "mse")
    n_out = data.n_outputs
    if classification and loss == "binary_cross_entropy" and n_out == 2:
        n_out = 1
    return Network(
        [data.n_features, *options.hidden, n_out], activation=options.activation,
        output=output, loss=loss, bias=options.bias, bias_init=options.bias_init,
        init=options.init, dtype=options.dtype, seed=options.seed,
        dropout=_per_hidden(options.dropout), batch_norm=options.batch_norm,
    )


def _per_hidden(rates: tuple[float, ...]) -> float | list[float]:
    """``--dropout``'s values: none → 0, one → every hidden layer, several → one each."""
    if not rates:
        return 0.0
    return rates[0] if len(rates) == 1 else list(rates)


def _model(options: TrainOptions, data: datasets.Dataset) -> Model:
    """A new model for ``data``: its default input scaling, its class names in order, and
    standardised targets for regression — targets in their own units (diabetes: 25-346)
    would make the first gradients huge and the learning rate data-dependent."""
    net = _network(options, data)
    labels = None if data.class_names is None else LabelEncoder(data.class_names)
    # Sparse features (a scipy.sparse .npz) are not centred: that would make them dense.
    scaler = "none" if is_scipy_sparse(data.X_train) else datasets.default_scaler(data.name)
    # Poisson targets are counts (y ≥ 0) in their own units: standardising would break that.
    target_scaler = None if net.loss.name == "poisson" else "standard"
    return Model(net, scaler=scaler, target_scaler=target_scaler, labels=labels,
                 feature_names=data_feature_names(data))


def data_feature_names(data: datasets.Dataset) -> list[str] | None:
    """The data set's feature names where its loader knows them."""
    names = getattr(data, "feature_names", None)
    return None if names is None else [str(n) for n in names]


def _base_lr(options: TrainOptions) -> float:
    """The learning rate the run starts with (--lr, or the optimizer's command default)."""
    return options.lr if options.lr is not None else DEFAULT_LR.get(options.optimizer, 1e-3)


def _schedule(options: TrainOptions) -> schedules.Schedule | None:
    """``--schedule cosine``: η_e = ½ η_0 (1 + cos(π e / epochs)), η_0 = --lr; its base is set
    here, not taken from the optimizer, whose lr a checkpoint holds already annealed."""
    if options.schedule == "constant":
        return None
    if options.schedule != "cosine":
        raise ConfigError(f"`--schedule` must be constant or cosine; got {options.schedule!r}")
    schedule = schedules.CosineAnnealingLR(T_max=options.epochs)
    schedule.base_lr = _base_lr(options)
    return schedule


def _optimizer(options: TrainOptions) -> optim.Optimizer:
    name = options.optimizer
    cls = optim.get(name)
    kwargs: dict[str, Any] = {
        "lr": _base_lr(options),
        "weight_decay": options.weight_decay,
        "decay_bias": options.decay_bias,
        "l1": options.l1,
        "max_norm": options.max_norm,
    }
    if options.momentum is not None:
        if name not in ("sgd", "rmsprop"):
            raise ConfigError(f"`--momentum` applies to sgd and rmsprop, not {name}")
        kwargs["momentum"] = options.momentum
    elif name == "sgd":
        kwargs["momentum"] = DEFAULT_SGD_MOMENTUM
    return cls(**kwargs)


def _labelled(data: datasets.Dataset, y: np.ndarray) -> np.ndarray:
    """The data set's targets as the user's labels (class names), or the targets as they are."""
    return np.asarray(data.class_names)[y] if data.class_names is not None else y


def _split(options: TrainOptions, data: datasets.Dataset) -> tuple[Any, Any, Any]:
    """Training rows, their labels, and the held-out validation rows (or None): drawn at
    random, or for a memory-mapped data set the last rows, so the file is not read whole."""
    X, y = data.X_train, _labelled(data, data.y_train)
    if options.val_split <= 0:
        return X, y, None
    if getattr(data, "memory_mapped", False):  # a random split would read the whole file
        k = len(X) - int(np.ceil(options.val_split * len(X)))  # the last rows: views
        return X[:k], y[:k], (X[k:], y[k:])
    rng = np.random.default_rng([options.seed, VALIDATION_SEED_OFFSET])
    X_tr, y_tr, X_val, y_val = datasets.train_val_split(X, y, options.val_split, rng)
    return X_tr, y_tr, (X_val, y_val)


def _check(options: TrainOptions) -> None:
    for key, minimum in (("epochs", 1), ("batch_size", 0)):
        if getattr(options, key) < minimum:
            raise ConfigError(f"`--{key.replace('_', '-')}` must be >= {minimum}; "
                              f"got {getattr(options, key)}")
    if not 0 <= options.val_split < 1:
        raise ConfigError(f"`--val-split` must be in [0, 1); got {options.val_split}")


def train(options: TrainOptions) -> dict[str, Any]:
    """``deltaprop train``: returns the JSON summary (history, test metrics, model path)."""
    state: dict[str, Any] | None = None
    if options.resume:
        options, model, state, optimizer = _resumed(options)
    _check(options)
    data = datasets.load(options.data, data_dir=options.data_dir, seed=options.seed,
                         dtype=options.dtype, target=options.target)
    history = training.History()
    stopper = None
    initial_epoch = 0
    if state is None:
        model = _model(options, data)
        optimizer = _optimizer(options)
    else:
        if model.n_inputs != data.n_features:
            raise ConfigError(
                f"{options.resume}: the network takes {model.n_inputs} inputs; "
                f"{data.name} has {data.n_features} features"
            )
        history = training.History.from_dict(state.get("history", {}))
        initial_epoch = int(state["epoch"])
        if "early_stopping" in state:
            best = [state["arrays"][f"best.{k}"]
                    for k in range(len(model.network.state_arrays()))
                    if f"best.{k}" in state["arrays"]]
            stopper = training.EarlyStopping.from_state(state["early_stopping"], best)
    if stopper is None and options.patience is not None:
        stopper = training.EarlyStopping(options.patience)
    model.meta = _model_meta(options, data, optimizer, history)  # checkpoints too
    schedule = _schedule(options)
    if state is not None:
        io.restore_schedule(options.resume, state, schedule)
    callbacks: list[training.Callback] = []
    if options.checkpoint_every:
        path = options.checkpoint_path or checkpoint_path(options.out)
        callbacks.append(Checkpoint(path, options.checkpoint_every, model, optimizer, history,
                                    stopper, options.run_settings(), schedule))
    fit, root = training.fit, True
    if options.distributed:  # under mpirun: rank 0 alone checkpoints, saves and plots
        from deltaprop import distributed

        fit, root = distributed.fit, distributed.is_root()
    X_train, y_train, validation = _split(options, data)
    batch = options.batch_size or len(X_train)
    # The command owns its process, so it may set the BLAS pool (fit's blas_threads).
    blas = 1 if batch < training.ONE_BLAS_THREAD_BELOW and not options.distributed else None
    model.fit(
        X_train, y_train, validation_data=validation, epochs=options.epochs,
        batch_size=options.batch_size or None, optimizer=optimizer,
        reduction=options.reduction, early_stopping=stopper, callbacks=callbacks,
        verbose=0 if options.quiet or options.as_json else 1,
        initial_epoch=initial_epoch, history=history, blas_threads=blas, trainer=fit,
        schedule=schedule,
    )
    model.meta = _model_meta(options, data, optimizer, history)
    test = model.evaluate(data.X_test, _labelled(data, data.y_test))
    model.meta["test"] = test
    if root:
        model.save(options.out)
    if options.plot and root:
        plot_history(history, options.plot)
    return {
        "data": data.name,
        "network": model.config(),
        "parameters": model.n_parameters(),
        "history": history.as_dict(),
        "test": test,
        "model": options.out,
    }


def _model_meta(options: TrainOptions, data: datasets.Dataset, optimizer: optim.Optimizer,
                history: training.History) -> dict[str, Any]:
    """What a model file says about its training: data, optimizer, epochs."""
    return {
        "data": data.name,
        "data_seed": options.seed,  # the split (and synthetic points) depend on it
        "task": data.task,
        "feature_shape": list(data.feature_shape),
        "optimizer": optimizer.hyperparameters() | {"name": optimizer.name},
        "epochs": len(history.epoch),
        "batch_size": options.batch_size,
        "target": options.target,  # --target: the column a data file's labels are in
    }


def plot_history(history: training.History, path: str) -> None:
    """Loss (and accuracy) per epoch, training vs validation, as a picture."""
    epochs = [e + 1 for e in history.epoch]
    panels = [("loss", "val_loss")]
    if history.accuracy:
        panels.append(("accuracy", "val_accuracy"))
    elif history.label_accuracy:
        panels.append(("label_accuracy", "val_label_accuracy"))
    fig = figures.figure((5 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (train_key, val_key) in zip(axes[0], panels, strict=True):
        ax.plot(epochs, getattr(history, train_key), label="train")
        if getattr(history, val_key):
            ax.plot(epochs, getattr(history, val_key), label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(train_key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    figures.save(fig, path)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def print_history(summary: dict[str, Any]) -> None:
    """The per-epoch table of a training run."""
    from rich.table import Table

    h = summary["history"]
    table = Table(title=f"training on {summary['data']}")
    columns = [k for k in training.METRICS[:-2] if h.get(k)]
    for name in ("epoch", *columns, "lr", "seconds"):
        table.add_column(name, justify="right")
    for row, epoch in enumerate(h["epoch"]):
        cells = [str(epoch + 1)] + [f"{h[c][row]:.4f}" for c in columns]
        table.add_row(*cells, f"{h['lr'][row]:g}", f"{h['seconds'][row]:.2f}")
    _console().print(table)


# ------------------------------------------------------------------------ evaluate / predict
def _features(X: np.ndarray, model: Model, source: str, path: str) -> np.ndarray:
    """A data file's rows as the model's inputs, or a DataError naming both sides."""
    X = X if is_scipy_sparse(X) else X.reshape(len(X), -1)
    if X.shape[1] != model.n_inputs:
        raise DataError(f"{source}: {X.shape[1]} features; the model {path} takes "
                        f"{model.n_inputs}")
    return X


def evaluate(path: str, data: str, data_dir: str | None, target: str | None,
             split: str) -> dict[str, Any]:
    """``deltaprop evaluate``: loss, accuracy and confusion matrix on a data set split."""
    from deltaprop import metrics

    model = io.load(path)
    ds = datasets.load(data, data_dir=data_dir, dtype=model.dtype.name, target=target,
                       seed=model.data_seed)
    X, y = (ds.X_test, ds.y_test) if split == "test" else (ds.X_train, ds.y_train)
    X = _features(X, model, ds.name, path)
    result: dict[str, Any] = {"model": path, "data": ds.name, "split": split,
                              "samples": X.shape[0]}
    if model.task == "classification":
        labels = _labelled(ds, y)
        result.update(model.evaluate(X, labels))
        classes = model.classes if model.classes is not None else np.arange(model.network.n_classes)
        encoder = LabelEncoder(classes)
        true, pred = encoder.encode(labels), encoder.encode(model.predict(X))
        result["classes"] = [str(c) for c in classes]
        result["confusion_matrix"] = metrics.confusion_matrix(true, pred, len(classes)).tolist()
    else:
        result.update(model.evaluate(X, y))
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


def _prediction_rows(model: Model, source: str) -> np.ndarray:
    """The rows of a file to predict on, as the model's inputs.

    Columns with the model's feature names are taken by name, in the model's order, wherever
    they are in the file, and any other column (the target, ids) is ignored. A file without
    names, or whose header names none of the model's features (its own naming), is taken by
    position; if it has one column more than the model takes — the training file itself, its
    labels still in it — the target column (``--target``'s position, else the last, as
    training read it) is left out.
    """
    from deltaprop import data

    target = model.meta.get("target")
    column = int(target) if isinstance(target, str) and target.lstrip("-").isdigit() else -1
    names = model.feature_names
    header = _header(source)
    if names is not None and header is not None and not set(names) & set(header):
        names = None  # the file names its columns its own way: take them by position
    read = dict(dtype=model.dtype.name, feature_names=names)
    try:
        X, names = data.read_features(source, **read)
    except DataError as error:  # a headerless file whose label column holds text?
        if header is None:
            raise
        try:
            X, names = data.read_features(source, target=column, **read)
        except DataError:
            raise error from None
        if X.reshape(len(X), -1).shape[1] != model.n_inputs:
            raise error from None
    X = X.reshape(len(X), -1)
    if names is None and header is not None and X.shape[1] == model.n_inputs + 1:
        # a headerless text file that still holds its (numeric) labels
        X = np.delete(X, column, axis=1)
    return X


def _header(source: str) -> list[str] | None:
    """The cells of a delimited text file's first line (its header, if it has one)."""
    from deltaprop.data.delimited import DELIMITERS

    delimiter = DELIMITERS.get(Path(source).suffix.lower())
    if delimiter is None:
        return None
    try:
        with open(source, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except OSError:
        return None  # the reader that follows names the problem
    return [cell.strip().strip('"') for cell in first.rstrip("\r\n").split(delimiter)]


def predict_csv(path: str, source: str) -> str:
    """``deltaprop predict``: CSV text with a prediction (and probabilities) per sample."""
    import csv
    import io as _stdio

    model = io.load(path)
    X = _features(_prediction_rows(model, source), model, source, path)
    out = _stdio.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if model.task == "classification":
        proba = model.predict_proba(X)
        classes = model.classes if model.classes is not None else range(proba.shape[1])
        writer.writerow(["prediction", *(f"p_{c}" for c in classes)])
        for label, row in zip(model.predict(X), proba, strict=True):
            writer.writerow([label, *(f"{p:.6g}" for p in row)])
    elif model.task == "multilabel":
        proba = model.predict_proba(X)
        k = proba.shape[1]
        writer.writerow([*(f"label_{j}" for j in range(k)), *(f"p_{j}" for j in range(k))])
        for labels, row in zip(model.predict(X), proba, strict=True):
            writer.writerow([*labels.tolist(), *(f"{p:.6g}" for p in row)])
    else:
        outputs = model.predict(X)
        writer.writerow([f"output_{k}" for k in range(outputs.shape[1])])
        for row in outputs:
            writer.writerow([f"{v:.6g}" for v in row])
    return out.getvalue()


# ------------------------------------------------------------------------ info
def info(path: str) -> dict[str, Any]:
    """``deltaprop info``: the model's layers, parameter counts, preprocessing and metadata."""
    model, doc = io.load_with_metadata(path)
    net = model.network
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
            "dropout": layer.dropout,
            "batch_norm": layer.norm is not None,
        })
    return {
        "model": path,
        "format_version": doc["format_version"],
        "deltaprop_version": doc.get("deltaprop_version"),
        "config": net.config(),
        "parameters": net.n_parameters(),
        "layers": layers,
        "task": model.task,
        "classes": None if model.classes is None else [str(c) for c in model.classes],
        "preprocessing": model.preprocessing(),
        "meta": model.meta,
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
    normed = [str(row["layer"]) for row in result["layers"] if row["batch_norm"]]
    if normed:
        console.print(f"batch norm (between z and σ) in layer {', '.join(normed)}")
    dropped = [f"{row['layer']} (p = {row['dropout']:g})" for row in result["layers"]
               if row["dropout"]]
    if dropped:
        console.print(f"dropout in training in layer {', '.join(dropped)}")
    meta = result["meta"]
    if meta:
        for key in ("data", "task", "epochs", "batch_size", "optimizer", "test"):
            if key in meta:
                console.print(f"{key}: {meta[key]}")
    pre = result["preprocessing"]
    scaling = pre["input"]["kind"] + (f" by {pre['input']['divisor']:g}"
                                      if pre["input"]["kind"] == "divide" else "")
    console.print(f"input scaling: {scaling}"
                  + (f"; targets: {pre['target']['kind']}" if pre["target"] else ""))
    if pre["feature_names"]:
        names = pre["feature_names"]
        console.print(f"features: {', '.join(names[:12])}"
                      + (f", … ({len(names)} in all)" if len(names) > 12 else ""))
    if result["classes"]:
        console.print(f"classes: {', '.join(result['classes'])}")
