"""The playground's one table of settings: name, kind, range, default — it checks API input,
tells the page how to draw each ``set-<name>`` control and how to read and write the URL hash.

Like TF Playground's ``state.ts``, a setting is added here once: the API accepts it
(:func:`apply`), ``GET /api/settings`` hands the row to the page, whose ``state.js`` builds the
URL hash from these rows alone. Names follow the CLI and :class:`~deltaprop.Network`
(``hidden``, ``activation``, ``bias``, ``lr``, ``batch_size``, …); the data settings follow the
data generators (``noise``, ``n_samples``, ``n_classes``, ``test_size``).

Groups say what a change does: ``data`` draws the data again and starts the network afresh,
``network`` starts the network afresh (same seed: same first weights), ``training`` takes
effect at the next step, ``view`` changes only the picture — among them what the diagram
colours, step mode and its stage, the sample or batch inspected and the selected neuron or
edge, so that a link reopens a view of backprop exactly.

This module checks types and ranges; the library's own constructors (``Network``, the
optimizers) check the combinations when the session builds them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from deltaprop import activations, gradcheck, initializers, losses, optim
from deltaprop.errors import ConfigError
from deltaprop.layers import BIAS_MODES
from deltaprop.playground.features import FEATURES

CLASSIFICATION = ("circles", "xor", "blobs", "spirals", "moons")
REGRESSION = ("plane", "multigauss")
UPLOADED = "csv"  # the dataset name of an uploaded CSV file
DATASETS = (*CLASSIFICATION, *REGRESSION, UPLOADED)
PROBLEMS = ("classification", "regression")
# The output layer and loss each problem starts with (canonical pairs: δ^L = a − y).
PROBLEM_OUTPUT = {
    "classification": ("softmax", "cross_entropy"),
    "regression": ("identity", "mse"),
}
CLASSIFIER_LOSSES = ("cross_entropy", "binary_cross_entropy")
MAX_LAYERS = 6  # hidden layers
MAX_NEURONS = 16  # per hidden layer
HIDDEN_ACTIVATIONS = tuple(n for n, a in activations.ACTIVATIONS.items() if not a.output_only)
NODE_VIEWS = ("a", "z", "delta", "db")  # activation, weighted input, δ, ∂C/∂b
EDGE_VIEWS = ("w", "dw", "update")  # weight, ∂C/∂w, Δw (what the step subtracts)
INSPECT = ("batch", "sample")  # the next step's mini-batch, or one training sample
MAX_STAGE = 3 * (MAX_LAYERS + 1)  # step mode has 3L + 1 stages (backprop.stages)
MAX_SAMPLE = 9999  # the session checks a sample index against the training set
MAX_TOUR = 20  # the page's guided tour has fewer steps; 0 is off


class SettingError(ConfigError):
    """A setting that does not exist, or a value of the wrong type or out of range."""


@dataclass(frozen=True)
class Setting:
    """One row of the table.

    ``kind`` is one of: ``choice`` (one of ``choices``), ``int``/``float`` (in
    [``low``, ``high``]; ``low_open`` excludes ``low``), ``bool``, ``sizes`` (the hidden
    layer sizes), ``subset`` (a non-empty list of distinct ``choices``), ``layers`` (one of
    ``choices`` per layer: ``per`` is ``hidden`` or ``all``; a single value sets every layer).
    ``options`` are the values the page offers in its control (the API takes any in range).
    """

    name: str
    group: str
    kind: str
    default: Any
    label: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    options: tuple[Any, ...] = ()
    per: str = ""
    help: str = ""
    control: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["choices"], d["options"] = list(self.choices), list(self.options)
        return d


_RATES = (0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
_PENALTIES = (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
_SEED_MAX = 2**31 - 1

SETTINGS: tuple[Setting, ...] = (
    # -- data: a change draws the data again and starts the network afresh
    Setting("problem", "data", "choice", "classification", "problem", PROBLEMS,
            help="classification (class labels) or regression (a number per point)"),
    Setting("dataset", "data", "choice", "circles", "data", DATASETS,
            help=f"generated 2-D data; '{UPLOADED}' is an uploaded file"),
    Setting("n_samples", "data", "int", 500, "points", low=20, high=2000,
            options=(100, 200, 500, 1000, 2000)),
    Setting("n_classes", "data", "int", 3, "classes", low=2, high=6, options=(2, 3, 4, 5, 6),
            help="classes of blobs and spirals (the other sets have 2)"),
    Setting("noise", "data", "float", 0.0, "noise", low=0.0, high=1.0,
            help="standard deviation of the jitter added to each point"),
    Setting("test_size", "data", "float", 0.5, "test fraction", low=0.1, high=0.9,
            help="fraction of the points held out for testing"),
    Setting("data_seed", "data", "int", 0, "data seed", low=0, high=_SEED_MAX,
            help="seeds the points and the split; 'regenerate' adds 1"),
    # -- network: a change starts the network afresh (same seed: same first weights)
    Setting("features", "network", "subset", ("x1", "x2"), "features", tuple(FEATURES),
            help="what the input layer is fed, computed from each point (x1, x2)"),
    Setting("hidden", "network", "sizes", (4, 2), "hidden layers", low=1, high=MAX_NEURONS,
            help=f"neurons per hidden layer, at most {MAX_LAYERS} layers of {MAX_NEURONS}"),
    Setting("activation", "network", "layers", "tanh", "activation", HIDDEN_ACTIVATIONS,
            per="hidden", help="σ of each hidden layer"),
    Setting("output", "network", "choice", "softmax", "output", tuple(activations.ACTIVATIONS),
            help="σ of the output layer"),
    Setting("loss", "network", "choice", "cross_entropy", "loss", tuple(losses.LOSSES)),
    Setting("bias", "network", "layers", "learned", "bias", BIAS_MODES, per="all",
            help="learned, frozen (kept at bias_init), none, or unit (a constant-1 node)"),
    Setting("bias_init", "network", "float", 0.0, "bias init", low=-10.0, high=10.0),
    Setting("init", "network", "choice", "glorot_uniform", "weight init",
            tuple(initializers.INITIALIZERS)),
    Setting("dtype", "network", "choice", "float32", "dtype", ("float32", "float64")),
    Setting("seed", "network", "int", 0, "seed", low=0, high=_SEED_MAX,
            help="seeds the first weights and the shuffling"),
    # -- training: takes effect at the next step (and ends the current epoch)
    Setting("optimizer", "training", "choice", "sgd", "optimizer", tuple(optim.OPTIMIZERS)),
    Setting("lr", "training", "float", 0.03, "learning rate", low=0.0, high=10.0,
            low_open=True, options=_RATES),
    Setting("momentum", "training", "float", 0.0, "momentum", low=0.0, high=0.999,
            options=(0.0, 0.5, 0.9, 0.99), help="sgd and rmsprop only"),
    Setting("l1", "training", "float", 0.0, "L1", low=0.0, high=10.0, options=_PENALTIES,
            help="λ₁: the gradient gains λ₁ sign(w) on the weights"),
    Setting("weight_decay", "training", "float", 0.0, "L2", low=0.0, high=10.0,
            options=_PENALTIES, help="λ₂: the gradient gains λ₂ w on the weights"),
    Setting("decay_bias", "training", "bool", False, "penalise biases"),
    Setting("batch_size", "training", "int", 10, "batch size", low=1, high=2000,
            help="samples per step (at most the training set)"),
    Setting("reduction", "training", "choice", "mean", "reduction", ("mean", "sum"),
            help="the batch gradient is the mean or the sum of per-sample gradients"),
    Setting("bias_rule", "training", "choice", "delta", "bias rule (layer-sum: WRONG)",
            gradcheck.BIAS_RULES,
            help="delta: eq. (14), each bias by its own neuron's δ; layer-sum: seed 002's "
                 "WRONG rule, every bias of a layer by the sum of the layer's δs"),
    # -- view: the picture only
    Setting("discretize", "view", "bool", False, "discretize output"),
    Setting("show_test", "view", "bool", False, "show test data"),
    Setting("node_view", "view", "choice", "a", "neurons show", NODE_VIEWS,
            help="a: activation over the plane; z: weighted input over the plane; delta: "
                 "the error signal δ of each inspected sample; db: ∂C/∂b of the batch"),
    Setting("edge_view", "view", "choice", "w", "edges show", EDGE_VIEWS,
            help="w: the weight; dw: ∂C/∂w of the inspected batch; update: Δw, what the "
                 "next step subtracts"),
    Setting("step_mode", "view", "bool", False, "step mode", control="step-mode",
            help="go through one backprop step stage by stage (pauses training)"),
    Setting("stage", "view", "int", 0, "stage", low=0, high=MAX_STAGE,
            help="the stage of step mode: 0 is the forward pass of layer 1"),
    Setting("inspect", "view", "choice", "batch", "inspect", INSPECT,
            help="what step mode and the δ and gradient views show: the mini-batch the "
                 "next step uses, or one training sample"),
    Setting("sample", "view", "int", 0, "sample", low=0, high=MAX_SAMPLE,
            help="the training sample inspected (0-based, as /api/data lists them)"),
    Setting("focus", "view", "focus", (), "selected",
            help="the neuron 'l,k' or weight 'l,k,j' whose equation is shown (seeds' "
                 "numbering: layer l = 1 … L, neuron k = 1 …, input j = 1 …)"),
    Setting("compare", "view", "bool", False, "compare bias modes", control="compare",
            help="train the same first weights with each bias mode, side by side"),
    Setting("tour", "view", "int", 0, "tour", low=0, high=MAX_TOUR, control="tour",
            help="the guided tour's step (0: closed)"),
)

TABLE: dict[str, Setting] = {s.name: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    """Every setting at its default, in canonical form (per-layer settings as lists)."""
    config = {s.name: list(s.default) if isinstance(s.default, tuple) else s.default
              for s in SETTINGS}
    config["activation"] = [config["activation"]] * len(config["hidden"])
    config["bias"] = [config["bias"]] * (len(config["hidden"]) + 1)
    return config


def schema() -> list[dict[str, Any]]:
    """The table as JSON for the page (``GET /api/settings``)."""
    return [s.as_dict() for s in SETTINGS]


# ------------------------------------------------------------------ checking one value
def _number(s: Setting, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(f"`{s.name}` must be a number; got {value!r}")
    v = float(value)
    below = v <= s.low if s.low_open else v < s.low  # type: ignore[operator]
    if not math.isfinite(v) or below or v > s.high:  # type: ignore[operator]
        low = f"> {s.low:g}" if s.low_open else f">= {s.low:g}"
        raise SettingError(f"`{s.name}` must be {low} and <= {s.high:g}; got {value!r}")
    return v


def _int(s: Setting, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(f"`{s.name}` must be an integer; got {value!r}")
    if not s.low <= value <= s.high:  # type: ignore[operator]
        raise SettingError(f"`{s.name}` must be in {s.low:g}..{s.high:g}; got {value!r}")
    return value


def _choice(s: Setting, value: Any, name: str | None = None) -> Any:
    if not isinstance(value, str) or value not in s.choices:
        raise SettingError(
            f"`{name or s.name}` must be one of {', '.join(map(str, s.choices))}; got {value!r}"
        )
    return value


def check(name: str, value: Any) -> Any:
    """``value`` in canonical form for setting ``name``, or a :class:`SettingError`.

    Per-layer settings come back as given (a name, or a list of names): their length is
    checked by :func:`apply`, which knows the number of layers.
    """
    if name not in TABLE:
        raise SettingError(f"unknown setting {name!r}; settings are: {', '.join(TABLE)}")
    s = TABLE[name]
    if s.kind == "choice":
        return _choice(s, value)
    if s.kind == "int":
        return _int(s, value)
    if s.kind == "float":
        return _number(s, value)
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise SettingError(f"`{name}` must be true or false; got {value!r}")
        return value
    if s.kind == "layers":
        if isinstance(value, list):
            return [_choice(s, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return _choice(s, value)
    if not isinstance(value, list):
        raise SettingError(f"`{name}` must be a list; got {value!r}")
    if s.kind == "focus":
        if len(value) not in (0, 2, 3) or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 64 for n in value):
            raise SettingError(f"`focus` must be [l, k] (a neuron) or [l, k, j] (a weight), "
                               f"numbered from 1, or []; got {value!r}")
        return list(value)
    if s.kind == "sizes":
        if len(value) > MAX_LAYERS:
            raise SettingError(f"`hidden` has at most {MAX_LAYERS} layers; got {len(value)}")
        for i, n in enumerate(value):
            if isinstance(n, bool) or not isinstance(n, int) or not s.low <= n <= s.high:
                raise SettingError(
                    f"`hidden[{i}]` must be an integer in 1..{MAX_NEURONS}; got {n!r}"
                )
        return list(value)
    # subset
    for v in value:
        _choice(s, v)
    if not value or len(set(value)) != len(value):
        raise SettingError(f"`{name}` must list one or more distinct features; got {value!r}")
    return [f for f in s.choices if f in value]  # the table's order


def _per_layer(name: str, value: Any, old: list[str], n: int) -> list[str]:
    """One entry per layer: a single value for every layer, a list of ``n``, or the old
    list fitted to ``n`` layers (cut, or lengthened by repeating its last hidden entry)."""
    if isinstance(value, str):
        return [value] * n
    if value is not None:
        if len(value) != n:
            raise SettingError(f"`{name}` needs {n} entries, one per layer; got {len(value)}")
        return list(value)
    if name == "bias":  # the output layer keeps its own mode
        hidden = _per_layer("activation", None, old[:-1], n - 1) if n > 1 else []
        return [*hidden, old[-1]]
    fill = old[-1] if old else TABLE[name].default
    return (old + [fill] * n)[:n]


def apply(config: dict[str, Any], changes: Any) -> tuple[dict[str, Any], set[str]]:
    """The configuration after ``changes``, and the groups that changed.

    Rules between settings: a new ``dataset`` brings its ``problem``; a new ``problem``
    brings its first data set, output layer and loss unless the same request names them;
    per-layer lists follow ``hidden``.

    Raises
    ------
    SettingError
        If ``changes`` is not an object, names an unknown setting or holds a bad value;
        ``config`` is not modified.
    """
    if not isinstance(changes, dict):
        raise SettingError(f"settings must be a JSON object; got {type(changes).__name__}")
    checked = {name: check(name, value) for name, value in changes.items()}
    new = dict(config)
    new.update({k: v for k, v in checked.items() if k not in ("activation", "bias")})
    if "dataset" in checked and checked["dataset"] != UPLOADED:
        problem = "regression" if checked["dataset"] in REGRESSION else "classification"
        if checked.get("problem", problem) != problem:
            raise SettingError(f"dataset {checked['dataset']!r} is a {problem} problem")
        new["problem"] = problem
    if new["problem"] != config["problem"]:
        if "dataset" not in checked:
            new["dataset"] = (CLASSIFICATION if new["problem"] == "classification"
                              else REGRESSION)[0]
        output, loss = PROBLEM_OUTPUT[new["problem"]]
        new["output"] = checked.get("output", output)
        new["loss"] = checked.get("loss", loss)
    if new["problem"] == "regression" and new["loss"] != "mse":
        raise SettingError(f"regression needs loss 'mse'; got {new['loss']!r}")
    if new["problem"] == "classification" and new["loss"] not in CLASSIFIER_LOSSES:
        # the library's classifiers are its cross-entropy losses (DESIGN.md §2)
        raise SettingError(f"classification needs loss cross_entropy or binary_cross_entropy; "
                           f"got {new['loss']!r}")
    n_hidden = len(new["hidden"])
    new["activation"] = _per_layer("activation", checked.get("activation"),
                                   config["activation"], n_hidden)
    new["bias"] = _per_layer("bias", checked.get("bias"), config["bias"], n_hidden + 1)
    groups = {TABLE[k].group for k in TABLE if new[k] != config[k]}
    return new, groups
