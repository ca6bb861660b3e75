"""scikit-learn estimators over Network.

``from deltaprop.sklearn import MLPClassifier, MLPRegressor`` gives scikit-learn users
deltaprop's engine behind the interface they know: the parameters of
``sklearn.neural_network`` with their meaning (solvers ``lbfgs``, ``sgd``, ``adam``; the
learning-rate schedules; ``sample_weight``; sparse input; the Poisson loss), the same fit
loop semantics (epochs of shuffled mini-batches, stop when the loss has not improved by
``tol`` for more than ``n_iter_no_change`` epochs, ``ConvergenceWarning`` at ``max_iter``),
scikit-learn's exception types and messages, and the same fitted attributes in
scikit-learn's orientation (``coefs_[i]`` is layer i's Wᵀ, shape (n_in, n_out)). The network
itself is ``network_``: its layers hold W in the book's (n_out, n_in) shape. scikit-learn's own
``test_mlp.py`` runs against these classes (``tests/sklearn_suite.py``, docs/sklearn.md).

The L2 term
-----------
scikit-learn's loss for a mini-batch is the (sample-weighted) mean data loss plus
(α/2)·Σ‖W‖²/Σs, Σs the batch's weight (its size m without weights), so its gradient adds
(α/Σs)·W. deltaprop's optimizers add λ·W (``weight_decay``, L2 in the gradient) to the batch
gradient, so the estimators pass

    λ = α / (batch_size · s̄)   (``reduction="mean"``, the default; s̄ the mean weight, 1
                                  without weights: a full batch gets exactly α / Σs)
    λ = α                      (``reduction="sum"``: the batch gradient is Σs times larger)

and L-BFGS, which takes the whole set at once, λ = α / Σs exactly. Two small differences
remain and are documented in ``docs/sklearn.md``: a batch whose weight differs from
batch_size · s̄ (a short last batch, uneven weights) gets λ from the average; and ``adamw``
decays decoupled, θ ← θ(1 − ηλ), with λ = α. Biases are not decayed (as in scikit-learn)
unless ``decay_bias=True``. ``loss_curve_`` holds the mean data loss of each epoch plus the
L2 term at the epoch's end (scikit-learn accumulates the same term batch by batch); for a
multi-output regressor deltaprop's ``mse`` is ½‖a − y‖² per sample, scikit-learn's is that
divided by the number of outputs (its gradient is not, so the two train alike).

Printing
--------
With ``verbose``, the estimators print ``Iteration N, loss = …`` on standard output as
scikit-learn does: that is scikit-learn's interface. The library below them prints nothing.
"""

from __future__ import annotations

import warnings
from itertools import pairwise
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from deltaprop import optim
from deltaprop.errors import TrainingDiverged
from deltaprop.initializers import INITIALIZERS
from deltaprop.layers import BIAS_MODES
from deltaprop.model import Model
from deltaprop.network import Network
from deltaprop.preprocessing import LabelEncoder
from deltaprop.schedules import InverseScalingLR
from deltaprop.training import Callback
from deltaprop.training import fit as train

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names → deltaprop's; deltaprop's own names pass through.
_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "softplus": "softplus",
    "gelu": "gelu",
}
# deltaprop's output activation names → scikit-learn's out_activation_.
_OUT_ACTIVATION = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity",
                   "exp": "exp"}
_FLOATS = (np.float64, np.float32)
_SPARSE = ["csr", "csc"]  # scikit-learn's MLP takes both; the engine works on CSR rows
_LBFGS = "lbfgs"
# The learning-rate schedules act on solver="sgd" only, as in scikit-learn.
_SCHEDULED_SOLVERS = ("sgd",)
# scikit-learn's words, kept so that code matching them keeps working.
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed.")
_ALL_ZERO_WEIGHTS = "Sample weights must contain at least one non-zero number."
# 'adaptive' stops once the rate would fall below this (scikit-learn's constant).
_SMALLEST_ADAPTIVE_RATE = 1e-6


def _random_state(random_state: Any) -> np.random.RandomState:
    """scikit-learn's ``check_random_state``, without NumPy's global state.

    An int seeds a RandomState of its own (so the draws are scikit-learn's for the same
    seed); a RandomState is used as given (the caller's own generator, as scikit-learn
    does); a Generator or None seed a fresh one (None: from fresh entropy — scikit-learn
    would draw from the global state, which deltaprop never touches).
    """
    if random_state is None:
        return np.random.RandomState(int(np.random.default_rng().integers(2**31 - 1)))
    if isinstance(random_state, (Integral, np.integer)):
        return np.random.RandomState(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(2**31 - 1)))
    raise ValueError(f"`random_state` must be None, an int or a RandomState; got {random_state!r}")


def _sklearn_init(rs: np.random.RandomState, units: list[int], activation: str
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's first weights, drawn as it draws them: per layer, coef (n_in, n_out)
    then intercept (n_out,), both U(−s, s) with s = √(f / (n_in + n_out)), f = 2 for a
    logistic network, else 6 (Glorot & Bengio, 2010; ``MLPClassifier._init_coef``)."""
    factor = 2.0 if activation == "logistic" else 6.0
    out = []
    for n_in, n_out in pairwise(units):
        bound = np.sqrt(factor / (n_in + n_out))
        coef = rs.uniform(-bound, bound, (n_in, n_out))
        out.append((coef, rs.uniform(-bound, bound, n_out)))
    return out


def _squared_weights(net: Network) -> float:
    """Σ‖W‖² over the layers' weights (a bias unit's column is a bias: not counted).

    W is column-major: its transpose is row-major, which ``vdot`` reads without a copy.
    """
    total = 0.0
    for layer in net.layers:
        W = layer.W_in.T  # row-major (a bias unit's W_in is a slice: vdot copies it)
        total += float(np.vdot(W, W))
    return total


class _ParameterList(list):
    """``coefs_`` or ``intercepts_`` of a fitted estimator: views into ``network_``.

    Item assignment writes through: ``est.coefs_[0] = A`` copies A into layer 1's W (as
    scikit-learn's plain list would replace it), so the network and the attribute never
    disagree. ``est.coefs_ = [...]`` copies every array the same way.
    """

    def __init__(self, views: list[np.ndarray], what: str) -> None:
        super().__init__(views)
        self.what = what

    def __setitem__(self, i: Any, value: Any) -> None:
        if not isinstance(i, (Integral, np.integer)):
            raise TypeError(f"{self.what} items are set one layer at a time; got index {i!r}")
        _write(self[i], value, f"{self.what}[{i}]")


def _write(view: np.ndarray, value: Any, name: str) -> None:
    """Copy ``value`` into the network's array ``view`` (shape-checked, cast to its dtype)."""
    value = np.asarray(value)
    if value.shape != view.shape:
        raise ValueError(f"{name} must have shape {view.shape}; got {value.shape}")
    if not view.flags.writeable:
        if np.any(value):
            raise ValueError(f"{name}: this layer has no bias (bias='none'); its intercepts "
                             "stay 0")
        return
    view[...] = value


class _SklearnLoop(Callback):
    """The per-epoch bookkeeping of scikit-learn's stochastic solvers, as a fit callback:
    ``loss_curve_``, ``t_``, the no-improvement count, validation scores, the 'adaptive'
    rate and ``verbose`` lines.

    The loss scikit-learn records adds, per batch, its penalty (α/2)‖W‖²/Σs at the weights
    the batch's gradient was taken at, weighted by the batch's rows: (α/2)‖W_b‖² · m_b/Σs_b,
    over the epoch's n rows. :meth:`penalty` (fit's gradient hook, which runs before each
    step) adds the same, with m_b/Σs_b = 1/s̄ (exact without weights).
    """

    def __init__(self, est: _BaseMLP, validation: tuple[Any, Any, Any] | None,
                 n_train: int, mean_weight: float) -> None:
        self.est = est
        self.validation = validation
        self.n_train = n_train
        self.scale = 0.5 * float(est.alpha) / mean_weight  # (α/2) / s̄
        self.l2 = 0.0  # Σ_b (α/2)‖W_b‖² m_b/Σs_b over the epoch so far
        self.converged = False

    def penalty(self, grads: Any, m: int) -> None:
        """fit's gradient hook: the batch's L2 term, at the weights before its step."""
        if self.scale:
            self.l2 += self.scale * _squared_weights(self.est.network_)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        est = self.est
        loss = logs["loss"] + self.l2 / self.n_train
        self.l2 = 0.0
        est.n_iter_ += 1
        est.t_ += self.n_train
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.validation is not None:
            est.validation_loss_curve_.append(logs["val_loss"])
            self.record_validation_score()
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, loss)
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validation is not None else "Training loss"
            msg = (f"{what} did not improve more than tol={est.tol:f} for "
                   f"{est.n_iter_no_change} consecutive epochs.")
            if est._lower_adaptive_rate(msg):
                est._no_improvement_count = 0
            else:
                self.converged = True
                return True
        return False

    def record_validation_score(self) -> float:
        """Score the held-out set (NaN if the outputs are not finite); keep the best weights."""
        est = self.est
        X_val, y_val, s_val = self.validation
        A = est.network_.forward(X_val)
        score = est._score_outputs(A, y_val, s_val) if np.isfinite(A).all() else float("nan")
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_params = [p.copy() for _, p in est.network_.parameters()]
        return score


class _BaseMLP(BaseEstimator):
    """Shared fit loop and attributes of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    _parameter_constraints: dict = {  # noqa: RUF012 - scikit-learn's own convention
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "solver": [StrOptions({_LBFGS, *optim.OPTIMIZERS})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "bias": [StrOptions(set(BIAS_MODES)), list, tuple],
        "bias_init": [Real],
        "decay_bias": ["boolean"],
        "init": [StrOptions({"sklearn", *INITIALIZERS})],
        "dtype": [StrOptions({"float32", "float64", "auto"})],
        "reduction": [StrOptions({"mean", "sum"})],
        "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
        "batch_norm": ["boolean", list, tuple],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        bias: Any = "learned",
        bias_init: float = 0.0,
        decay_bias: bool = False,
        init: str = "sklearn",
        dtype: str = "auto",
        reduction: str = "mean",
        dropout: Any = 0.0,
        batch_norm: Any = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.bias = bias
        self.bias_init = bias_init
        self.decay_bias = decay_bias
        self.init = init
        self.dtype = dtype
        self.reduction = reduction
        self.dropout = dropout
        self.batch_norm = batch_norm

    # ------------------------------------------------------------- fitted attributes
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Layer i's weights in scikit-learn's orientation: Wᵀ, shape (n_in, n_out) (views).

        Assignable, as scikit-learn's: ``est.coefs_ = [...]`` or ``est.coefs_[i] = A`` write
        into the network; before the first fit, assigned weights (with ``intercepts_``) are
        where the next ``partial_fit`` or warm-started ``fit`` starts.
        """
        if "network_" not in self.__dict__ and "_assigned_coefs" in self.__dict__:
            return self._assigned_coefs
        check_is_fitted(self, "network_")
        return _ParameterList([layer.W_in.T for layer in self.network_.layers], "coefs_")

    @coefs_.setter
    def coefs_(self, value: Any) -> None:
        if "network_" not in self.__dict__:
            self._assigned_coefs = value
            return
        self._write_layers(value, self.coefs_, "coefs_")

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Layer i's bias, shape (n_out,): b, a bias unit's W column, or zeros for ``none``."""
        if "network_" not in self.__dict__ and "_assigned_intercepts" in self.__dict__:
            return self._assigned_intercepts
        check_is_fitted(self, "network_")
        out = []
        for layer in self.network_.layers:
            if layer.has_unit:
                out.append(layer.W[:, -1])
            elif layer.b is not None:
                out.append(layer.b)
            else:
                zeros = np.zeros(layer.n_out, dtype=self.network_.dtype)
                zeros.flags.writeable = False  # nothing to write through to
                out.append(zeros)
        return _ParameterList(out, "intercepts_")

    @intercepts_.setter
    def intercepts_(self, value: Any) -> None:
        if "network_" not in self.__dict__:
            self._assigned_intercepts = value
            return
        self._write_layers(value, self.intercepts_, "intercepts_")

    @staticmethod
    def _write_layers(value: Any, views: list[np.ndarray], name: str) -> None:
        if len(value) != len(views):
            raise ValueError(f"{name} needs {len(views)} arrays, one per layer; got {len(value)}")
        for i, (view, v) in enumerate(zip(views, value, strict=True)):
            _write(view, v, f"{name}[{i}]")

    # ------------------------------------------------------------- the fit loop
    def _hidden(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(not isinstance(s, (Integral, np.integer)) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _net_dtype(self, X: Any) -> str:
        return X.dtype.name if self.dtype == "auto" else self.dtype

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                stacklevel=4,
            )
        return int(np.clip(self.batch_size, 1, n))

    def _weight_decay(self, batch_weight: float) -> float:
        """deltaprop's λ for scikit-learn's α: α over a batch's weight Σs (module docstring)."""
        if self.solver == "adamw" or self.reduction == "sum":
            return float(self.alpha)
        return float(self.alpha) / batch_weight

    def _make_optimizer(self, lam: float) -> optim.Optimizer:
        lr = float(self.learning_rate_init)
        common = {"weight_decay": lam, "decay_bias": bool(self.decay_bias)}
        if self.solver == "sgd":
            return optim.SGD(lr=lr, momentum=float(self.momentum),
                             nesterov=bool(self.nesterovs_momentum) and self.momentum > 0,
                             **common)
        if self.solver in ("adam", "adamw", "nadam"):
            return optim.get(self.solver)(lr=lr, betas=(self.beta_1, self.beta_2),
                                          eps=float(self.epsilon), **common)
        return optim.get(self.solver)(lr=lr, **common)

    def _lower_adaptive_rate(self, msg: str) -> bool:
        """scikit-learn's answer to a plateau: True if training goes on at a lower rate.

        With ``learning_rate="adaptive"`` (sgd) the rate is divided by 5 until it is at most
        1e-6; otherwise the plateau stops training.
        """
        opt = self._optimizer
        if self.learning_rate != "adaptive" or self.solver not in _SCHEDULED_SOLVERS:
            if self.verbose:
                print(msg + " Stopping.")
            return False
        if opt.lr <= _SMALLEST_ADAPTIVE_RATE:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return False
        opt.lr /= 5.0
        if self.verbose:
            print(msg + f" Setting learning rate to {opt.lr:f}")
        return True

    def _check_solver(self) -> bool:
        if self.solver == _LBFGS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is "
                "not stochastic."
            )
        return True

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> _BaseMLP:
        self._validate_params()
        hidden = self._hidden()
        fitted = "network_" in self.__dict__ or "_assigned_coefs" in self.__dict__
        first_pass = not fitted or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        s = self._sample_weight(sample_weight, X.shape[0], X.dtype)
        self._random_state = _random_state(self.random_state)  # per fit, as scikit-learn
        if first_pass:
            self._start(X, Y, hidden)
        elif "network_" not in self.__dict__:
            self._start_from_assigned(X, Y)
        if self.solver == _LBFGS:
            self._fit_lbfgs(X, Y, s)
        else:
            self._fit_stochastic(X, Y, s, incremental)
        if not all(np.isfinite(p).all() for _, p in self.network_.parameters()):
            raise ValueError(_NON_FINITE)
        return self

    def _sample_weight(self, sample_weight: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
        """Checked weights (n,), or None; scikit-learn's errors for its checks' cases."""
        if sample_weight is None:
            return None
        s = np.asarray(sample_weight, dtype=dtype)
        if s.ndim == 0:
            s = np.full(n, s, dtype=dtype)
        if s.shape != (n,):
            raise ValueError(f"sample_weight.shape == {s.shape}, expected {(n,)}!")
        if not np.isfinite(s).all():
            raise ValueError("Input sample_weight contains NaN or infinity.")
        if not s.any():
            raise ValueError(_ALL_ZERO_WEIGHTS)
        return s

    def _network(self, sizes: list[int], dtype: str, *, draw_init: bool = True) -> Network:
        """A network of ``sizes`` whose first weights are ``init``'s.

        ``init="sklearn"`` (the default) draws scikit-learn's first weights and biases from
        the fit's RandomState, as scikit-learn does: the same ``random_state`` gives the same
        starting point. The network's own Generator (shuffling) is seeded by an int
        ``random_state``, else by a draw that follows those.
        """
        rs = self._random_state
        first = None
        if self.init == "sklearn" and draw_init:
            first = _sklearn_init(rs, sizes, self.activation)
        seed = self.random_state
        if not isinstance(seed, (Integral, np.integer)):
            seed = rs.randint(2**31 - 1)
        net = Network(
            sizes,
            activation=_ACTIVATIONS[self.activation],
            output=self._output_activation(),
            loss=self._loss(),
            bias=self.bias,
            bias_init=self.bias_init,
            init="glorot_uniform" if self.init == "sklearn" else self.init,
            dtype=dtype,
            seed=int(seed),
            dropout=self.dropout,
            batch_norm=self.batch_norm,
        )
        for layer, (coef, intercept) in zip(net.layers, first, strict=True) if first else ():
            layer.W_in[...] = coef.T
            if layer.has_unit:
                layer.W[:, -1] = intercept
            elif layer.bias == "learned":  # frozen stays at bias_init; none has no b
                layer.b[...] = intercept
        return net

    def _start(self, X: Any, Y: np.ndarray, hidden: list[int]) -> None:
        """A new network and fresh bookkeeping (the first fit, or fit without warm_start)."""
        self.__dict__.pop("_assigned_coefs", None)
        self.__dict__.pop("_assigned_intercepts", None)
        self.network_ = self._network([X.shape[1], *hidden, Y.shape[1]], self._net_dtype(X))
        self._bookkeeping(Y, fresh=True)

    def _start_from_assigned(self, X: Any, Y: np.ndarray) -> None:
        """The network from ``coefs_``/``intercepts_`` assigned before any fit (scikit-learn
        lets a user set them, then ``partial_fit`` from there); bookkeeping the user did not
        set starts fresh."""
        coefs = [np.asarray(W) for W in self.__dict__.pop("_assigned_coefs")]
        intercepts = self.__dict__.pop("_assigned_intercepts", None)
        sizes = [coefs[0].shape[0], *(W.shape[1] for W in coefs)]
        if sizes[0] != X.shape[1] or sizes[-1] != Y.shape[1]:
            raise ValueError(f"the assigned coefs_ take {sizes[0]} features to {sizes[-1]} "
                             f"outputs; X has {X.shape[1]} features and y {Y.shape[1]} outputs")
        self.network_ = self._network(sizes, self._net_dtype(X), draw_init=False)
        self.coefs_ = coefs
        if intercepts is not None:
            self.intercepts_ = intercepts
        self._bookkeeping(Y, fresh=False)

    def _bookkeeping(self, Y: np.ndarray, fresh: bool) -> None:
        """The Model and scikit-learn's fitted attributes; ``fresh=False`` keeps those set."""
        values: dict[str, Any] = {
            "n_outputs_": Y.shape[1],
            "n_layers_": len(self.network_.layers) + 1,
            "out_activation_": _OUT_ACTIVATION[self.network_.output.name],
            "t_": 0,
            "loss_curve_": [],
            "best_loss_": None if self.early_stopping else np.inf,
            "_no_improvement_count": 0,
            "validation_scores_": [] if self.early_stopping else None,
            "validation_loss_curve_": [] if self.early_stopping else None,
            "best_validation_score_": -np.inf if self.early_stopping else None,
        }
        for key, value in values.items():
            if fresh or key not in self.__dict__:
                setattr(self, key, value)
        self.model_ = Model(self.network_, scaler="none", target_scaler=None,
                            labels=self._labels())
        # the weights early stopping falls back on until a validation score beats -inf
        self._best_params = [p.copy() for _, p in self.network_.parameters()]
        self.__dict__.pop("_optimizer", None)
        self.__dict__.pop("_schedule", None)

    def _fit_lbfgs(self, X: Any, Y: np.ndarray, s: np.ndarray | None) -> None:
        """Full-batch L-BFGS: scikit-learn's loss (data loss + (α/2)‖W‖²/Σs), max_iter,
        max_fun and tol (the largest gradient entry), through ``optim.LBFGS``."""
        weight = float(s.sum()) if s is not None else float(X.shape[0])
        lbfgs = optim.LBFGS(
            max_iter=int(self.max_iter), max_fun=int(self.max_fun), tol=float(self.tol),
            weight_decay=self._weight_decay(weight), decay_bias=bool(self.decay_bias),
        )
        curve: list[float] = []

        def report(iteration: int, loss: float) -> None:
            curve.append(loss)
            if self.verbose:
                print(f"Iteration {iteration}, loss = {loss:.8f}")

        try:
            result = lbfgs.minimize(self.network_, X, Y, reduction=self.reduction,
                                    sample_weight=s, callback=report)
        except TrainingDiverged as e:
            raise ValueError(f"{_NON_FINITE} ({e})") from e
        self.n_iter_ = min(result.n_iter, int(self.max_iter))
        self.loss_ = result.loss
        self.loss_curve_ = curve
        if not result.converged:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"({result.n_fun} loss evaluations): {result.message}. Increase the number of "
                "iterations (max_iter) or of loss evaluations (max_fun), or scale the data.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _fit_stochastic(self, X: Any, Y: np.ndarray, s: np.ndarray | None,
                        incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        validation = held_out = None  # (X_val, y_val, s_val) to score, (X_val, Y_val, s_val)
        s_train = s
        if self.early_stopping:
            X, Y, s_train, validation, held_out = self._split(X, Y, s)
        n = X.shape[0]
        self._batch = self._batch_size(n)
        mean_weight = float(s_train.mean()) if s_train is not None else 1.0
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = self._make_optimizer(self._weight_decay(self._batch * mean_weight))
            self._schedule = None
            if self.learning_rate == "invscaling" and self.solver in _SCHEDULED_SOLVERS:
                self._schedule = InverseScalingLR(float(self.power_t))
                self._schedule.t = int(self.t_)  # scikit-learn's time step runs on over fits
        loop = _SklearnLoop(self, validation, n, mean_weight)
        self.n_iter_ = 0
        try:
            train(
                self.network_,
                X,
                Y,
                epochs=1 if incremental else int(self.max_iter),
                batch_size=self._batch,
                optimizer=self._optimizer,
                reduction=self.reduction,
                sample_weight=s_train,
                validation_data=held_out,
                shuffle=bool(self.shuffle),
                schedule=self._schedule,
                gradient_hook=loop.penalty,
                callbacks=[loop],
                verbose=0,  # the estimator prints scikit-learn's lines itself (loop)
            )
        except TrainingDiverged as e:
            if not self.early_stopping:
                raise ValueError(f"{_NON_FINITE} ({e})") from e
            self._record_divergence(loop, e)
        if not incremental and not loop.converged and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if self.early_stopping:
            for (_, p), best in zip(self.network_.parameters(), self._best_params, strict=True):
                np.copyto(p, best)

    def _record_divergence(self, loop: _SklearnLoop, error: TrainingDiverged) -> None:
        """Early stopping after a diverged epoch: scikit-learn records NaN and restores the
        best validation weights; so do the estimators, and warn."""
        self.n_iter_ += 1
        self.loss_ = float("nan")
        self.loss_curve_.append(float("nan"))
        self.validation_loss_curve_.append(float("nan"))
        self.validation_scores_.append(float("nan"))
        warnings.warn(f"{error} The best validation weights are restored.", ConvergenceWarning,
                      stacklevel=5)
        loop.converged = True

    def _split(self, X: Any, Y: np.ndarray, s: np.ndarray | None) -> tuple[Any, ...]:
        """scikit-learn's early-stopping split: (X, Y, s) to train on, then the held-out
        rows twice, (X_val, y_val, s_val) to score and (X_val, Y_val, s_val) for the loss.

        Stratified by class for a single-output classifier, as scikit-learn: its binarized
        column, so a too-rare class gets scikit-learn's own error.
        """
        stratify = Y.astype(bool) if is_classifier(self) and Y.shape[1] == 1 else None
        arrays = [X, Y] if s is None else [X, Y, s]
        parts = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        X_tr, X_val, Y_tr, Y_val = parts[:4]
        s_tr, s_val = (None, None) if s is None else parts[4:]
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the "
                "size of your dataset."
            )
        y_val = self._targets_to_y(Y_val)
        return X_tr, Y_tr, s_tr, (X_val, y_val, s_val), (X_val, Y_val, s_val)

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=_FLOATS, accept_sparse=_SPARSE)
        return self.network_.forward(X)

    def _labels(self) -> LabelEncoder | None:
        """The model's labels: scikit-learn's classes_, or one per column for multilabel."""
        return None

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's interface, deltaprop's engine.

    Softmax output and cross-entropy for several classes; one sigmoid output and binary
    cross-entropy for two classes and, one output per label, for multilabel targets (as
    scikit-learn). Parameters not described here mean what they mean in
    ``sklearn.neural_network.MLPClassifier``.

    Parameters
    ----------
    activation : {"relu", "logistic", "tanh", "identity", "sigmoid", "leaky_relu", "elu",
        "softplus", "gelu"}
        σ of the hidden layers; ``logistic`` is scikit-learn's name for ``sigmoid``.
    solver : {"adam", "sgd", "lbfgs", "adamw", "nadam", "rmsprop", "adagrad"}
        ``lbfgs``: full-batch L-BFGS (``deltaprop.optim.LBFGS``, SciPy's L-BFGS-B), bounded
        by ``max_iter`` iterations and ``max_fun`` loss evaluations, stopping when the
        largest gradient entry is ≤ ``tol``. The others: a ``deltaprop.optim`` optimizer on
        mini-batches.
    alpha : float
        L2 strength in scikit-learn's convention (the module docstring maps it to
        deltaprop's ``weight_decay``).
    learning_rate : {"constant", "invscaling", "adaptive"}
        scikit-learn's schedules, for ``solver="sgd"``: η_0 throughout;
        η_0 / (t + 1)^power_t with t the samples seen (``schedules.InverseScalingLR``); or
        η divided by 5 whenever the no-improvement count exceeds ``n_iter_no_change``,
        stopping once η ≤ 1e-6.
    n_iter_no_change : int or np.inf
        ``np.inf``: never stop for lack of improvement.
    max_fun : int
        Most loss evaluations for ``lbfgs``.
    bias : {"learned", "frozen", "none", "unit"} or list of them, one per layer
    bias_init : float
        First value of every bias with a deltaprop ``init``, and of ``frozen`` biases.
    decay_bias : bool
        Apply the L2 term to biases as well (scikit-learn never does).
    init : str
        ``sklearn`` (default): scikit-learn's first weights and biases, drawn as scikit-learn
        draws them, so the same ``random_state`` starts from the same point; or a deltaprop
        initializer (``glorot_uniform``, ``he_normal``, …) with biases at ``bias_init``.
    dtype : {"auto", "float32", "float64"}
        The network's dtype; ``auto`` (default) follows the training input, as scikit-learn:
        float32 stays float32, anything else is float64.
    reduction : {"mean", "sum"}
        The batch gradient is the mean (scikit-learn) or the sum of per-sample gradients.
    dropout : float or list of float
        Dropout rate p of the hidden layers in training (one for all, or one per hidden
        layer); 0 (default) is scikit-learn's behaviour.
    batch_norm : bool or list of bool
        Batch normalization between z and σ in the hidden layers (default off). The layers'
        own bias stays ``bias`` (pass ``bias="none"``: batch norm's β plays its part).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_, intercepts_ : list of ndarray
        ``coefs_[i]`` is (n_in, n_out), layer i's Wᵀ; views into ``network_``, and
        assignments to them write into it.
    n_iter_ : int
        Epochs (iterations for lbfgs) run by the last call to ``fit`` (1 for ``partial_fit``).
    loss_, loss_curve_ : float, list of float
        Training loss (with the L2 term) after the last epoch, and per epoch over every fit
        and partial fit (lbfgs: per iteration of the last fit).
    validation_loss_curve_ : list of float or None
        Loss on the held-out ``validation_fraction`` per epoch, with ``early_stopping``.
    validation_scores_ : list of float or None
        Accuracy on the held-out set per epoch, with ``early_stopping``.
    best_loss_ : float or None
        Lowest training loss (None with ``early_stopping``, as scikit-learn).
    network_ : deltaprop.Network
        The trained network (W in the book's (n_out, n_in) shape).
    model_ : deltaprop.Model
        The network with the classes: ``model_.save(path)`` writes a file whose
        ``dp.load(path).predict`` and ONNX export answer as this estimator does.
    """

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"

    def _loss(self) -> str:
        if self._output_activation() == "softmax":
            return "cross_entropy"
        return "binary_cross_entropy"

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, np.ndarray]:
        X, y = validate_data(self, X, y, multi_output=True, dtype=_FLOATS, reset=reset,
                             accept_sparse=_SPARSE)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        Y = self._label_binarizer.transform(y).astype(X.dtype)
        return X, Y

    def _targets_to_y(self, Y: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(Y)

    def _labels(self) -> LabelEncoder:
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return LabelEncoder(n_labels=len(self.classes_))
        return LabelEncoder(self.classes_)

    def _score_outputs(self, A: np.ndarray, y: np.ndarray, s: np.ndarray | None) -> float:
        return float(accuracy_score(y, self._label_binarizer.inverse_transform(A),
                                    sample_weight=s))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train on (X, y) for up to ``max_iter`` epochs (or continue, with ``warm_start``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels) (multilabel indicator)
        sample_weight : array-like of shape (n_samples,), optional
            Each sample's weight in the loss, its gradient, the validation score and the
            stopping rule.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); ``classes`` (every label) is required on the first call.

        Only for the stochastic solvers: an ``lbfgs`` estimator has no ``partial_fit``.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels of shape (n_samples,), or a label indicator matrix for multilabel."""
        A = self._forward(X)  # checks that the estimator is fitted first
        return self.model_.decode_outputs(A)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the network's dtype."""
        A = self._forward(X)
        if A.shape[1] == 1 and self._label_binarizer.y_type_ != "multilabel-indicator":
            return np.hstack([1 - A, A])
        return A

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor.

    Parameters and attributes are those of :class:`MLPClassifier` (no ``classes_``;
    ``validation_scores_`` holds R²), and ``loss``, first as in scikit-learn:

    loss : {"squared_error", "poisson"}
        ``squared_error``: identity output and deltaprop's ``mse``, ½‖a − y‖² per sample
        (scikit-learn's half squared error for one output). ``poisson``: exponential
        output and half the Poisson deviance (deltaprop's ``poisson``), for counts y ≥ 0.
    """

    _parameter_constraints: dict = {  # noqa: RUF012 - scikit-learn's own convention
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }
    _LOSSES = {"squared_error": ("identity", "mse"), "poisson": ("exp", "poisson")}  # noqa: RUF012

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        bias: Any = "learned",
        bias_init: float = 0.0,
        decay_bias: bool = False,
        init: str = "sklearn",
        dtype: str = "auto",
        reduction: str = "mean",
    ) -> None:
        self.loss = loss
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, bias=bias,
            bias_init=bias_init, decay_bias=decay_bias, init=init, dtype=dtype,
            reduction=reduction,
        )

    def _output_activation(self) -> str:
        return self._LOSSES[self.loss][0]

    def _loss(self) -> str:
        return self._LOSSES[self.loss][1]

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, np.ndarray]:
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=_FLOATS, reset=reset,
            accept_sparse=_SPARSE,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if hasattr(self, "n_outputs_") and not reset and Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} outputs; the regressor was fitted with {self.n_outputs_}"
            )
        return X, np.ascontiguousarray(Y, dtype=X.dtype)

    def _targets_to_y(self, Y: np.ndarray) -> np.ndarray:
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _score_outputs(self, A: np.ndarray, y: np.ndarray, s: np.ndarray | None) -> float:
        return float(r2_score(y, A.ravel() if A.shape[1] == 1 else A, sample_weight=s))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train on (X, y) for up to ``max_iter`` epochs (or continue, with ``warm_start``);
        ``sample_weight`` as for :meth:`MLPClassifier.fit`."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y) (stochastic solvers only)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Outputs of shape (n_samples,) for one target, else (n_samples, n_outputs)."""
        A = self._forward(X)
        return A.ravel() if A.shape[1] == 1 else A
