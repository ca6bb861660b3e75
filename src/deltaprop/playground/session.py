"""The training thread: owns the Network, the data and the settings behind one lock, and
publishes the newest frame on request — one frame, never a queue.

A :class:`Session` is what the HTTP API drives. Its thread trains while ``playing``, a few
milliseconds of steps per turn of the lock, so requests wait at most that long. Readers take a
:class:`Snapshot` (a copy of the network and the counters, made under the lock) and do their
slow work outside it. Frames for the page are built by the training thread itself, between
two turns, when a page has asked for one (:meth:`Session.next_frame`): two CPU-bound Python
threads would fight over the interpreter lock, and training, which lets go of it in every
NumPy call, would lose. So a frame costs training exactly its build time, the page gets the
newest state when it is ready for it, and nothing piles up however slow the page.

The run is recorded as a list of events for the exported snippet: ``train`` segments (steps
taken under one set of training settings) and ``edit`` events (a weight set by hand). A
change of a training setting, or an edit, ends the current epoch, so that each segment is one
``Network.fit`` call of the library.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deltaprop import optim
from deltaprop.errors import ConfigError
from deltaprop.network import Network
from deltaprop.playground import data as plane
from deltaprop.playground import features, selection, settings
from deltaprop.playground.trainer import Curve, Hook, Trainer, gradient_hook
from deltaprop.training import TrainingDiverged

CHUNK_SECONDS = 0.004  # the longest the thread holds the lock while playing
MAX_STEPS = 100_000  # per "step" request
TRAINING_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "decay_bias", "l1",
                 "batch_size", "reduction", "bias_rule")


ACTIONS = ("play", "pause", "step", "reset", "next-stage")


class RequestError(ConfigError):
    """A request the session refuses (the API answers 4xx); nothing was changed."""


def n_outputs(config: dict[str, Any], d: plane.PlaneData) -> int:
    """Output neurons: 1 for regression and for two classes with a sigmoid (binary
    cross-entropy), else one per class."""
    if d.task == "regression":
        return 1
    return 1 if d.n_classes == 2 and config["loss"] == "binary_cross_entropy" else d.n_classes


def targets(config: dict[str, Any], d: plane.PlaneData, y: np.ndarray) -> np.ndarray:
    """What ``fit`` is given as y: class indices, or one-hot rows for binary cross-entropy
    on 3+ classes (a sigmoid per class)."""
    if d.task == "regression" or config["loss"] == "cross_entropy" or n_outputs(config, d) == 1:
        return y
    return np.eye(d.n_classes)[y]


def make_optimizer(config: dict[str, Any]) -> optim.Optimizer:
    """The optimizer the settings name, with their lr, momentum (where it has one) and L2."""
    cls = optim.get(config["optimizer"])
    kwargs = {"lr": config["lr"], "weight_decay": config["weight_decay"],
              "decay_bias": config["decay_bias"]}
    if "momentum" in inspect.signature(cls).parameters:
        kwargs["momentum"] = config["momentum"]
    return cls(**kwargs)


def make_hook(net: Network, config: dict[str, Any]) -> Hook | None:
    """The gradient hook the settings ask for on ``net``: L1, seed 002's wrong bias rule."""
    return gradient_hook(net, config["l1"], config["decay_bias"], config["bias_rule"])


def make_network(config: dict[str, Any], d: plane.PlaneData) -> Network:
    """The network the settings describe, for data ``d`` (its seed fixes the first weights)."""
    if config["problem"] != d.task:
        raise RequestError(f"the data set is a {d.task} problem; set problem to {d.task!r}")
    sizes = [len(config["features"]), *config["hidden"], n_outputs(config, d)]
    return Network(sizes, activation=config["activation"], output=config["output"],
                   loss=config["loss"], bias=config["bias"], bias_init=config["bias_init"],
                   init=config["init"], dtype=config["dtype"], seed=config["seed"])


@dataclass
class Run:
    """One network's training from its first weights: everything a reset rebuilds."""

    net: Network
    trainer: Trainer
    X_test: np.ndarray
    Y_test: np.ndarray
    curve: Curve = field(default_factory=Curve)
    log: list[dict[str, Any]] = field(default_factory=list)
    segment: dict[str, Any] | None = None  # the train event steps are being added to

    def losses(self, net: Network | None = None) -> dict[str, dict[str, float]]:
        """Loss (and accuracy) of ``net`` (default: the run's) on all train and test data."""
        net = net or self.net
        # one label per point: k sigmoid outputs are one-vs-rest classes, scored by argmax
        task = "classification" if net.is_classifier else None
        with np.errstate(over="ignore", invalid="ignore"):
            return {"train": net.evaluate_targets(self.trainer.X, self.trainer.Y, task=task),
                    "test": net.evaluate_targets(self.X_test, self.Y_test, task=task)}


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


@dataclass
class Probe:
    """What a view of one backprop step needs from under the lock.

    ``rows``: the training rows inspected (the next mini-batch, or one sample); ``source``:
    ``"batch"`` or ``"sample"``; ``optimizer``: a copy of the optimizer with its state, to
    take the step on a copy of the network; ``m``: the workspace size the trainer steps in.
    """

    rows: np.ndarray
    source: str
    optimizer: optim.Optimizer
    m: int


@dataclass
class Snapshot:
    """A consistent copy of a session's state, taken under its lock."""

    net: Network
    config: dict[str, Any]
    data: plane.PlaneData
    run: Run  # its arrays are read, never written, by snapshot users
    step: int
    epoch: int
    playing: bool
    message: str | None
    version: int
    data_version: int
    curve: dict[str, list]
    log: list[dict[str, Any]]
    steps_per_second: float
    probe: Probe | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON state (``GET /api/state``): counters, settings, losses, parameters."""
        metrics = self.run.losses(self.net)
        loss = {k: _finite(v["loss"]) for k, v in metrics.items()}
        history = {key: list(series) for key, series in self.curve.items()}
        if history["step"] and history["step"][-1] < self.step:  # the curve ends now
            for key, value in (("step", self.step), ("train", loss["train"]),
                               ("test", loss["test"])):
                history[key].append(value)
        params = [{"W": layer.W.tolist(), "b": None if layer.b is None else layer.b.tolist(),
                   "bias": layer.bias, "activation": layer.activation.name}
                  for layer in self.net.layers]
        return {
            "step": self.step,
            "epoch": self.epoch,
            "playing": self.playing,
            "message": self.message,
            "version": self.version,
            "data_version": self.data_version,
            "config": self.config,
            "sizes": list(self.net.sizes),
            "task": self.data.task,
            "classes": self.data.classes,
            "loss": loss,
            "accuracy": ({k: v["accuracy"] for k, v in metrics.items()}
                         if self.net.is_classifier else None),
            "params": params,
            "history": history,
            "steps_per_second": self.steps_per_second,
        }


class Session:
    """The playground's state and its training thread.

    Parameters
    ----------
    overrides : dict, optional
        Settings that differ from the defaults (checked as ``POST /api/config`` checks them).

    Raises
    ------
    settings.SettingError, ValueError
        For bad ``overrides``.
    """

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        self._cond = threading.Condition()
        self.upload: plane.PlaneData | None = None
        self.playing = False
        self.message: str | None = None
        self.version = 0
        self.data_version = 0
        self.steps_per_second = 0.0
        self._thread: threading.Thread | None = None
        self._stopping = False
        # frames: built by the training thread with `frame_builder` (the app sets it)
        self.frame_builder: Callable[[Snapshot], bytes] | None = None
        self._frame: tuple[int, bytes] | None = None  # (version, bytes): the newest frame
        self._frame_wanted = False
        config, _ = settings.apply(settings.defaults(), overrides or {})
        self.data = plane.generate(config, None)
        self.config = config
        self.run = self._new_run(config, self.data)

    # ------------------------------------------------------------------ building
    def _new_run(self, config: dict[str, Any], d: plane.PlaneData) -> Run:
        net = make_network(config, d)
        X = net.check_X(features.transform(d.X_train, config["features"]))
        Y = net.targets(targets(config, d, d.y_train), X.shape[0])
        X_test = net.check_X(features.transform(d.X_test, config["features"]), "test X")
        Y_test = net.targets(targets(config, d, d.y_test), X_test.shape[0], "test y")
        trainer = Trainer(net, make_optimizer(config), X, Y, config["batch_size"],
                          config["reduction"], make_hook(net, config))
        run = Run(net, trainer, X_test, Y_test)
        self._record(run)
        return run

    @staticmethod
    def _record(run: Run) -> None:
        m = run.losses()
        run.curve.add(run.trainer.steps, _finite(m["train"]["loss"]), _finite(m["test"]["loss"]))

    def _retrain(self, config: dict[str, Any]) -> None:
        """Apply new training settings to the current run from its next step on."""
        new = make_optimizer(config)  # checks the values with the library's own checks
        trainer = self.run.trainer
        if new.name == trainer.optimizer.name:
            for key, value in new.hyperparameters().items():  # keep the optimizer's state
                setattr(trainer.optimizer, key, value)
        else:
            trainer.optimizer = new
            self.run.log.append({"kind": "new_optimizer"})
        trainer.set_batching(config["batch_size"], config["reduction"])
        trainer.hook = make_hook(self.run.net, config)
        trainer.end_epoch()
        self.run.segment = None

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        """Start the training thread (the app's lifespan calls this)."""
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="deltaprop-playground",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the training thread and wait for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _frame_due(self) -> bool:
        built = self._frame[0] if self._frame is not None else -1
        return self._frame_wanted and self.frame_builder is not None and built != self.version

    def _loop(self) -> None:
        """The thread's body: a bug in a step or a frame pauses training with a message
        (and its traceback in the log), never ends the thread."""
        while not self._stopping:
            try:
                self._run()
            except Exception as e:  # a bug must not silently stop training
                logging.getLogger(__name__).exception("the playground's training thread")
                with self._cond:
                    self.playing, self._frame_wanted = False, False
                    self.message = f"internal error, training paused: {type(e).__name__}: {e}"
                    self.version += 1
                    self._cond.notify_all()

    def _run(self) -> None:
        mark = (time.perf_counter(), 0)
        while True:
            with self._cond:
                while not (self._stopping or self.playing or self._frame_due()):
                    self.steps_per_second = 0.0
                    self._cond.wait()
                    mark = (time.perf_counter(), self.run.trainer.steps)
                if self._stopping:
                    return
                deadline = time.perf_counter() + CHUNK_SECONDS
                while self.playing and time.perf_counter() < deadline:
                    self._step()
                now, steps = time.perf_counter(), self.run.trainer.steps
                if self.playing and now - mark[0] >= 0.5:
                    self.steps_per_second = (steps - mark[1]) / (now - mark[0])
                    mark = (now, steps)
                snap = self.snapshot(self._view_inspect()) if self._frame_due() else None
                self._frame_wanted = False if snap is not None else self._frame_wanted
            if snap is not None and self.frame_builder is not None:
                frame = self.frame_builder(snap)  # outside the lock: requests go on
                with self._cond:
                    self._frame = (snap.version, frame)
                    self._cond.notify_all()
            time.sleep(0)  # let a waiting request take the lock

    def _view_inspect(self) -> tuple[str, int] | None:
        """The rows the page's view inspects, when it needs backprop's numbers."""
        if not selection.needs_backprop(self.config):
            return None
        return self.config["inspect"], self.config["sample"]

    def next_frame(self, seen: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest frame if it is newer than version ``seen``, asking the training thread
        to build one if need be; None if nothing changed within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._frame is None or self._frame[0] <= seen:
                if self.version > seen:
                    self._frame_wanted = True
                    self._cond.notify_all()
                remaining = end - time.monotonic()
                if remaining <= 0 or self._stopping:
                    return None
                self._cond.wait(remaining)
            return self._frame

    def _step(self) -> bool:
        """One training step, with the lock held; False (and paused) if it diverged."""
        run = self.run
        try:
            run.trainer.step()
        except TrainingDiverged as e:
            self.playing = False
            self.message = str(e)
            run.log.append({"kind": "diverged", "message": str(e)})
            run.segment = None
            self.version += 1
            return False
        if run.segment is None:
            run.segment = {"kind": "train", "steps": 0,
                           **{k: self.config[k] for k in TRAINING_KEYS}}
            run.log.append(run.segment)
        run.segment["steps"] += 1
        if run.curve.due(run.trainer.steps):
            self._record(run)
        self.version += 1
        return True

    # ------------------------------------------------------------------ requests
    def snapshot(self, inspect: tuple[str, int] | None = None) -> Snapshot:
        """A copy of the current state, for readers that work outside the lock.

        ``inspect`` — ``("batch", 0)`` or ``("sample", i)`` — adds a :class:`Probe` of those
        rows (frames get the one the view settings name, when they need backprop's numbers).

        Raises
        ------
        RequestError
            A sample that does not exist.
        """
        with self._cond:
            run = self.run
            probe = None if inspect is None else self._probe(*inspect)
            return Snapshot(
                net=run.net.copy(), config=copy.deepcopy(self.config), data=self.data,
                run=run, step=run.trainer.steps, epoch=run.trainer.epoch,
                playing=self.playing, message=self.message, version=self.version,
                data_version=self.data_version, curve=run.curve.as_dict(),
                log=copy.deepcopy(run.log), steps_per_second=self.steps_per_second,
                probe=probe,
            )

    def _probe(self, source: str, sample: int) -> Probe:
        trainer = self.run.trainer
        if source == "sample":
            problem = selection.sample_problem(sample, trainer.n)
            if problem is not None:
                raise RequestError(problem)
            rows = np.array([sample])
        else:  # the mini-batch the next step takes (its epoch's order drawn if due)
            rows = trainer.next_rows().copy()
        return Probe(rows, source, copy.deepcopy(trainer.optimizer), trainer.m)

    def configure(self, changes: Any) -> None:
        """Change settings (``POST /api/config``); all or nothing.

        Raises
        ------
        settings.SettingError, RequestError, ValueError
            For an unknown setting, a bad value or an impossible combination; the session
            is unchanged.
        """
        with self._cond:
            config, groups = settings.apply(self.config, changes)
            d, run = self.data, None
            if "data" in groups:
                d = plane.generate(config, self.upload)
            if groups & {"data", "network"}:
                run = self._new_run(config, d)
            elif "training" in groups:
                make_optimizer(config)  # check before anything changes
            target = run if run is not None else self.run
            cleared = selection.check_view(config, target.net, target.trainer.n, changes)
            # nothing can fail from here on
            self.config = config
            if run is not None:
                if d is not self.data:
                    self.data_version += 1
                self.data, self.run, self.message = d, run, None
            elif "training" in groups:
                self._retrain(config)
            if cleared:
                self.message = cleared
            if config["step_mode"] and {"step_mode", "stage"} & set(changes):
                self.playing = False  # stepping through a step pauses training first
            self.version += 1
            self._cond.notify_all()


    def control(self, action: Any, steps: Any = 1) -> None:
        """``play``, ``pause``, ``step`` (``steps`` of them, pausing first), ``reset`` (the
        same first weights, paused) or ``next-stage`` (step mode: pause, go on to the next
        stage; after the last, take the step and start again at the first)."""
        if action not in ACTIONS:
            raise RequestError(f"`action` must be {', '.join(ACTIONS[:-1])} or {ACTIONS[-1]}; "
                               f"got {action!r}")
        if action == "step" and (isinstance(steps, bool) or not isinstance(steps, int)
                                 or not 1 <= steps <= MAX_STEPS):
            raise RequestError(f"`steps` must be an integer in 1..{MAX_STEPS}; got {steps!r}")
        with self._cond:
            if action == "reset":
                self.run = self._new_run(self.config, self.data)
                self.playing, self.message = False, None
            elif action == "step":
                self.playing, self.message = False, None
                for _ in range(steps):
                    if not self._step():
                        break
                self.config["stage"] = 0  # a new batch: its step starts at the beginning
            elif action == "next-stage":
                self._next_stage()
            else:
                self.playing = action == "play"
                if self.playing:
                    self.message = None
            self.version += 1
            self._cond.notify_all()

    def _next_stage(self) -> None:
        """Step mode's "next": pause, enter step mode or go on one stage; after the last
        stage (the updates), take the step and start the next one at its first stage."""
        self.playing = False
        config = self.config
        if not config["step_mode"]:
            config["step_mode"], config["stage"] = True, 0
        elif config["stage"] + 1 < selection.stage_count(len(self.run.net.layers)):
            config["stage"] += 1
        else:
            self.message = None
            self._step()
            config["stage"] = 0

    def edit(self, layer: Any, name: Any, index: Any, value: Any) -> None:
        """Set one weight or bias by hand (``POST /api/param``); ends the current epoch."""
        with self._cond:
            layers = self.run.net.layers
            if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(
                    layers):
                raise RequestError(f"`layer` must be 0..{len(layers) - 1}; got {layer!r}")
            target = layers[layer].W if name == "W" else layers[layer].b if name == "b" else None
            if name not in ("W", "b") or target is None:
                raise RequestError(f"layer {layer} has no parameter {name!r} (W, or b where "
                                   f"its bias mode has one)")
            if (not isinstance(index, list) or len(index) != target.ndim or not all(
                    isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                    for i, n in zip(index, target.shape, strict=False))):
                raise RequestError(f"`index` must be a list of {target.ndim} indices into "
                                   f"{name} of shape {list(target.shape)}; got {index!r}")
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not np.isfinite(value)):
                raise RequestError(f"`value` must be a finite number; got {value!r}")
            target[tuple(index)] = value
            self.run.log.append({"kind": "edit", "layer": layer, "name": name,
                                 "index": list(index), "value": float(target[tuple(index)])})
            self.run.trainer.end_epoch()
            self.run.segment = None
            self.version += 1

    def add_points(self, rows: Any) -> None:
        """Add points [x1, x2, label] to the training data; the network starts afresh."""
        with self._cond:
            d = plane.add_points(self.data, rows)
            self._new_data(d, self.config)

    def upload_csv(self, content: bytes) -> None:
        """Use an uploaded CSV file as the data (dataset ``csv``)."""
        with self._cond:
            up = plane.read_csv(content, self.config["test_size"], self.config["data_seed"])
            config, _ = settings.apply(self.config, {"dataset": "csv", "problem": up.task})
            d = plane.generate(config, up)
            self._new_data(d, config)
            self.upload = up

    def _new_data(self, d: plane.PlaneData, config: dict[str, Any]) -> None:
        run = self._new_run(config, d)
        config = dict(config)
        cleared = selection.check_view(config, run.net, run.trainer.n, {})
        self.config, self.data, self.run, self.message = config, d, run, cleared
        self.data_version += 1
        self.version += 1

    def predict(self, points: Any) -> dict[str, Any]:
        """The network's outputs for raw points [[x1, x2], …] (``POST /api/predict``)."""
        X = np.asarray(points, dtype=np.float64) if isinstance(points, list) else None
        if X is None or X.ndim != 2 or X.shape[1:] != (2,) or not np.isfinite(X).all():
            raise RequestError("`points` must be a list of [x1, x2] rows of finite numbers")
        snap = self.snapshot()
        inputs = features.transform(X, snap.config["features"])
        A = snap.net.predict_proba(inputs)
        out: dict[str, Any] = {"step": snap.step, "outputs": A.tolist()}
        if snap.net.is_classifier:
            index = snap.net.index_of(A)
            out["classes"] = index.tolist()
            out["labels"] = [snap.data.classes[i] for i in index] if snap.data.classes else None
        return out
