"""scikit-learn estimators over Network.

``from deltaprop.sklearn import MLPClassifier, MLPRegressor`` gives scikit-learn users
deltaprop's engine behind the interface they know: parameters named as in
``sklearn.neural_network`` where the concept is the same, the same fit loop semantics
(epochs of shuffled mini-batches, stop when the loss has not improved by ``tol`` for more than
``n_iter_no_change`` epochs, ``ConvergenceWarning`` at ``max_iter``), and the same fitted
attributes, in scikit-learn's orientation (``coefs_[i]`` is layer i's Wᵀ, shape (n_in, n_out)).
The network itself is ``network_``: its layers hold W in the book's (n_out, n_in) shape.

The L2 term
-----------
scikit-learn's loss for a mini-batch of m samples is the mean data loss plus
(α/2)·Σ‖W‖²/m, so its gradient adds (α/m)·W. deltaprop's optimizers add λ·W (``weight_decay``,
L2 in the gradient) to the batch gradient, so the estimators pass

    λ = α / batch_size        (``reduction="mean"``, the default)
    λ = α                     (``reduction="sum"``: the batch gradient is m times larger)

Two small differences remain and are documented in ``docs/sklearn.md``: a short last batch
of m' < batch_size samples gets α/batch_size where scikit-learn uses α/m'; and ``adamw``
decays decoupled, θ ← θ(1 − ηλ), with λ = α. Biases are not decayed (as in scikit-learn)
unless ``decay_bias=True``. ``loss_curve_`` holds the mean data loss of each epoch plus
(α/2)·Σ‖W‖²/batch_size at the epoch's end (scikit-learn accumulates the same term batch by
batch); for a multi-output regressor deltaprop's ``mse`` is ½‖a − y‖² per sample, scikit-learn's
is that divided by the number of outputs.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from deltaprop import optim
from deltaprop.layers import BIAS_MODES
from deltaprop.model import Model
from deltaprop.network import Network
from deltaprop.preprocessing import LabelEncoder
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
_FLOATS = (np.float64, np.float32)


def _seed_from(random_state: Any) -> int:
    """A seed for the network's Generator; never touches NumPy's global random state."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, (Integral, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    raise ValueError(f"`random_state` must be None, an int or a RandomState; got {random_state!r}")


class _SklearnLoop(Callback):
    """The per-epoch bookkeeping of scikit-learn's stochastic solvers, as a fit callback."""

    def __init__(self, est: _BaseMLP, X_val: Any, y_val: Any, incremental: bool) -> None:
        self.est = est
        self.X_val = X_val
        self.y_val = y_val
        self.incremental = incremental
        self.converged = False

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        est = self.est
        net = est.network_
        loss = logs["loss"] + est._l2_term()
        est.n_iter_ += 1
        est.t_ += est._n_train
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if self.X_val is not None:
            est.validation_loss_curve_.append(logs["val_loss"])
            score = est._score_outputs(net.forward(self.X_val), self.y_val)
            est.validation_scores_.append(score)
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = [p.copy() for _, p in net.parameters()]
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if loss < est.best_loss_:
                est.best_loss_ = loss
        if est._no_improvement_count > est.n_iter_no_change:
            self.converged = True  # as scikit-learn's constant-rate solvers: stop
            return True
        return False


class _BaseMLP(BaseEstimator):
    """Shared fit loop and attributes of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    _parameter_constraints: dict = {  # noqa: RUF012 - scikit-learn's own convention
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "solver": [StrOptions(set(optim.OPTIMIZERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
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
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "bias": [StrOptions(set(BIAS_MODES)), list, tuple],
        "bias_init": [Real],
        "decay_bias": ["boolean"],
        "init": [str],
        "dtype": [StrOptions({"float32", "float64", "auto"})],
        "reduction": [StrOptions({"mean", "sum"})],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: int = 0,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        bias: Any = "learned",
        bias_init: float = 0.0,
        decay_bias: bool = False,
        init: str = "glorot_uniform",
        dtype: str = "float32",
        reduction: str = "mean",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
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
        self.bias = bias
        self.bias_init = bias_init
        self.decay_bias = decay_bias
        self.init = init
        self.dtype = dtype
        self.reduction = reduction

    # ------------------------------------------------------------- fitted attributes
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Layer i's weights in scikit-learn's orientation: Wᵀ, shape (n_in, n_out) (a view)."""
        check_is_fitted(self, "network_")
        return [layer.W_in.T for layer in self.network_.layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Layer i's bias, shape (n_out,): b, a bias unit's W column, or zeros for ``none``."""
        check_is_fitted(self, "network_")
        out = []
        for layer in self.network_.layers:
            if layer.has_unit:
                out.append(layer.W[:, -1])
            elif layer.b is not None:
                out.append(layer.b)
            else:
                out.append(np.zeros(layer.n_out, dtype=self.network_.dtype))
        return out

    # ------------------------------------------------------------- the fit loop
    def _hidden(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(not isinstance(s, (Integral, np.integer)) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _net_dtype(self, X: np.ndarray) -> str:
        return X.dtype.name if self.dtype == "auto" else self.dtype

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                stacklevel=3,
            )
        return int(np.clip(self.batch_size, 1, n))

    def _weight_decay(self, batch_size: int) -> float:
        """deltaprop's λ for scikit-learn's α (module docstring)."""
        if self.solver == "adamw" or self.reduction == "sum":
            return float(self.alpha)
        return float(self.alpha) / batch_size

    def _l2_term(self) -> float:
        """(α/2)·Σ‖W‖²/batch_size, scikit-learn's penalty as it enters ``loss_curve_``."""
        if not self.alpha:
            return 0.0
        total = sum(float(np.dot(W.ravel(), W.ravel())) for W in self.coefs_)
        return 0.5 * float(self.alpha) * total / self._batch

    def _make_optimizer(self, batch_size: int) -> optim.Optimizer:
        lam = self._weight_decay(batch_size)
        lr = float(self.learning_rate_init)
        common = {"weight_decay": lam, "decay_bias": bool(self.decay_bias)}
        if self.solver == "sgd":
            return optim.SGD(lr=lr, momentum=float(self.momentum),
                             nesterov=bool(self.nesterovs_momentum) and self.momentum > 0,
                             **common)
        if self.solver in ("adam", "adamw"):
            return optim.get(self.solver)(lr=lr, betas=(self.beta_1, self.beta_2),
                                          eps=float(self.epsilon), **common)
        if self.solver == "nadam":
            return optim.NAdam(lr=lr, betas=(self.beta_1, self.beta_2),
                               eps=float(self.epsilon), **common)
        return optim.get(self.solver)(lr=lr, **common)

    def _fit(self, X: Any, y: Any, incremental: bool) -> _BaseMLP:
        self._validate_params()
        hidden = self._hidden()
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if first_pass:
            seed = _seed_from(self.random_state)
            self.network_ = Network(
                [X.shape[1], *hidden, Y.shape[1]],
                activation=_ACTIVATIONS[self.activation],
                output=self._output_activation(),
                loss=self._loss(),
                bias=self.bias,
                bias_init=self.bias_init,
                init=self.init,
                dtype=self._net_dtype(X),
                seed=seed,
            )
            self._seed = seed
            self.model_ = Model(self.network_, scaler="none", target_scaler=None,
                                labels=self._labels())
            self.n_outputs_ = Y.shape[1]
            self.n_layers_ = len(hidden) + 2
            self.out_activation_ = {"sigmoid": "logistic"}.get(
                self._output_activation(), self._output_activation()
            )
            self.t_ = 0
            self.loss_curve_: list[float] = []
            self.best_loss_: float | None = np.inf
            self._no_improvement_count = 0
            self.validation_scores_: list[float] | None = None
            self.validation_loss_curve_: list[float] | None = None
            self.best_validation_score_: float | None = None
            if self.early_stopping:
                self.validation_scores_, self.validation_loss_curve_ = [], []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None

        net = self.network_
        X_val = Y_val = y_val = None
        self._best_params = None
        if self.early_stopping:
            # stratified as scikit-learn: by class, never for multilabel targets
            stratify = None
            if is_classifier(self) and self._label_binarizer.y_type_ != "multilabel-indicator":
                stratify = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0]
            X, X_val, Y, Y_val = train_test_split(
                X, Y, random_state=self._seed, test_size=self.validation_fraction,
                stratify=stratify,
            )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the "
                    "size of your dataset."
                )
            y_val = self._targets_to_y(Y_val)
        self._n_train = X.shape[0]
        self._batch = self._batch_size(X.shape[0])
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(self._batch)
        loop = _SklearnLoop(self, X_val, y_val, incremental)
        self.n_iter_ = 0
        train(
            net,
            X,
            Y,
            epochs=1 if incremental else int(self.max_iter),
            batch_size=self._batch,
            optimizer=self._optimizer,
            reduction=self.reduction,
            validation_data=None if X_val is None else (X_val, Y_val),
            shuffle=bool(self.shuffle),
            callbacks=[loop],
            verbose=int(self.verbose),
        )
        if not incremental and not loop.converged and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.early_stopping and getattr(self, "_best_params", None):
            for (_, p), best in zip(net.parameters(), self._best_params, strict=True):
                np.copyto(p, best)
        return self

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=_FLOATS)
        return self.network_.forward(X)

    def _labels(self) -> LabelEncoder | None:
        """The model's labels: scikit-learn's classes_, or one per column for multilabel."""
        return None

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
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
    solver : {"adam", "sgd", "adamw", "nadam", "rmsprop", "adagrad"}
        A ``deltaprop.optim`` optimizer; ``lbfgs`` is not offered. The learning rate is
        constant (scikit-learn's ``learning_rate="constant"``).
    alpha : float
        L2 strength in scikit-learn's convention; deltaprop's ``weight_decay`` is
        α / batch_size (``reduction="mean"``) or α (``"sum"``; ``adamw``: decoupled λ = α).
    bias : {"learned", "frozen", "none", "unit"} or list of them, one per layer
    bias_init : float
        First value of every bias (scikit-learn draws biases at random; deltaprop starts
        them here).
    decay_bias : bool
        Apply the L2 term to biases as well (scikit-learn never does).
    init : str
        deltaprop weight initializer; ``glorot_uniform`` is scikit-learn's scheme for
        relu/tanh layers.
    dtype : {"float32", "float64", "auto"}
        The network's dtype; ``auto`` follows the training input (float32 or float64).
    reduction : {"mean", "sum"}
        The batch gradient is the mean (scikit-learn) or the sum of per-sample gradients.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_, intercepts_ : list of ndarray
        ``coefs_[i]`` is (n_in, n_out), layer i's Wᵀ; views into ``network_``.
    n_iter_ : int
        Epochs run by the last call to ``fit`` (or 1 for ``partial_fit``).
    loss_curve_ : list of float
        Training loss (with the L2 term) per epoch, over every fit and partial fit.
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
    ) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, multi_output=True, dtype=_FLOATS, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
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

    def _score_outputs(self, A: np.ndarray, y: np.ndarray) -> float:
        return float(accuracy_score(y, self._label_binarizer.inverse_transform(A)))

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on (X, y) for up to ``max_iter`` epochs (or continue, with ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels) (multilabel indicator)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); ``classes`` (every label) is required on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True)

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
    """Multi-layer perceptron regressor: identity output and deltaprop's ``mse`` loss.

    Parameters and attributes are those of :class:`MLPClassifier` (no ``classes_``;
    ``validation_scores_`` holds R²). ``mse`` is ½‖a − y‖² per sample: scikit-learn's
    squared loss for one output.
    """

    def _output_activation(self) -> str:
        return "identity"

    def _loss(self) -> str:
        return "mse"

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=_FLOATS, reset=reset
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

    def _score_outputs(self, A: np.ndarray, y: np.ndarray) -> float:
        return float(r2_score(y, A.ravel() if A.shape[1] == 1 else A))

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train on (X, y) for up to ``max_iter`` epochs (or continue, with ``warm_start``)."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y)."""
        return self._fit(X, y, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Outputs of shape (n_samples,) for one target, else (n_samples, n_outputs)."""
        A = self._forward(X)
        return A.ravel() if A.shape[1] == 1 else A
