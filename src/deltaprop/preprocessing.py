"""Preprocessing fitted on training data only: scaling, labels, one-hot targets, random splits.

Randomness comes from an explicit ``numpy.random.Generator``, never NumPy's global state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltaprop._validation import is_scipy_sparse
from deltaprop.errors import ConfigError, ConfigTypeError, DataError
from deltaprop.streaming import row_blocks

__all__ = [
    "LabelEncoder",
    "Scaler",
    "float_dtype",
    "one_hot",
    "split_indices",
    "train_val_split",
]


def float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as float32 or float64, or a ValueError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"`dtype` must be float32 or float64; got {dtype!r}")
    return resolved


def check_split_fraction(name: str, value: float) -> float:
    """``value`` as a float strictly between 0 and 1 (a test or validation fraction)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ConfigError(f"`{name}` must be a number between 0 and 1; got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ConfigError(f"`{name}` must be > 0 and < 1; got {value!r}")
    return float(value)


def split_indices(
    y: np.ndarray, test_size: float, rng: np.random.Generator, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test row indices; with ``stratify``, each class keeps its proportion.

    The test set has ``ceil(test_size * n)`` rows (as in scikit-learn's
    ``train_test_split``); stratified, they are shared among classes by largest remainder.
    """
    n = len(y)
    n_test = math.ceil(test_size * n)
    if n_test < 1 or n_test >= n:
        raise DataError(f"{n} samples are too few to split with a fraction of {test_size}")
    perm = rng.permutation(n)
    if not stratify:
        return perm[n_test:], perm[:n_test]
    classes_in_perm = np.unique(y[perm], return_inverse=True)[1].reshape(-1)
    counts = np.bincount(classes_in_perm)
    exact = counts * (n_test / n)
    take = np.floor(exact).astype(np.int64)
    short = n_test - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:short]] += 1
    # Rank of each row within its class, in permutation order.
    order = np.argsort(classes_in_perm, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    is_test = rank < take[classes_in_perm]
    return perm[~is_test], perm[is_test]


_SCALER_KINDS = ("none", "minmax", "standard", "divide")


class Scaler:
    """Per-feature affine scaling x ↦ (x − offset) / scale, fitted on training data only.

    Kinds:

    - ``"none"``: x unchanged (only cast to the output dtype);
    - ``"minmax"``: offset = min, scale = max − min of each training feature, so training
      data lands in [0, 1] (test data may fall outside);
    - ``"standard"``: offset = mean, scale = standard deviation (population, ddof = 0);
    - ``"divide"``: offset = 0, scale = ``divisor`` for every feature (255 for 8-bit
      images, 16 for digits); needs no fit.

    A feature that is constant in the training data gets scale 1, so it maps to 0 rather
    than dividing by zero. Statistics are computed and stored in float64.

    Parameters
    ----------
    kind : {"none", "minmax", "standard", "divide"}, default "standard"
    divisor : float, optional
        Required for (and only for) ``kind="divide"``; must be finite and > 0.
    """

    def __init__(self, kind: str = "standard", divisor: float | None = None) -> None:
        if kind not in _SCALER_KINDS:
            raise ConfigError(f"`kind` must be one of {', '.join(_SCALER_KINDS)}; got {kind!r}")
        if kind == "divide":
            try:
                valid = divisor is not None and 0.0 < float(divisor) < math.inf
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise ConfigError(f"`divisor` must be finite and > 0; got {divisor!r}")
            divisor = float(divisor)
        elif divisor is not None:
            raise ConfigError(f"`divisor` applies only to kind='divide'; got kind={kind!r}")
        self.kind = kind
        self.divisor = divisor
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.n_features: int | None = None
        # offset and scale cast to each output dtype, so a per-batch transform allocates nothing
        self._cast: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        extra = f", divisor={self.divisor!r}" if self.kind == "divide" else ""
        return f"Scaler({self.kind!r}{extra})"

    @property
    def is_fitted(self) -> bool:
        """True once the scaler can transform: fitted, or a kind that needs no fit."""
        return self.kind in ("none", "divide") or self.offset is not None

    def fit(self, X: np.ndarray) -> Scaler:
        """Learn offset and scale from training features ``X`` of shape (n, n_features).

        One streaming pass over blocks of rows (:func:`deltaprop.streaming.row_blocks`), so
        ``X`` may be a memory map larger than memory: only one block is resident at a time.
        The mean and variance of ``"standard"`` combine the blocks' own (count, mean, sum of
        squared deviations) in float64 — Chan, Golub & LeVeque's pairwise update — which is
        as accurate as one two-pass computation over the whole of ``X``.

        Returns
        -------
        Scaler
            ``self``.
        """
        if is_scipy_sparse(X):
            return self._fit_sparse(X)
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.ndim != 2 or len(X) == 0:
            raise DataError(f"`X` must have shape (n, n_features) with n >= 1; got {X.shape}")
        if X.dtype.kind not in "biuf":
            raise DataError(f"`X` must be numeric; got dtype {X.dtype}")
        self.n_features = X.shape[1]
        statistics = self.kind in ("minmax", "standard")
        low = np.full(X.shape[1], np.inf)
        high = np.full(X.shape[1], -np.inf)
        count, mean, squares = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
        blocks = row_blocks(X) if statistics or X.dtype.kind == "f" else iter(())
        for _, block in blocks:
            if block.dtype.kind == "f" and not np.isfinite(block).all():
                raise DataError("`X` contains NaN or infinity")
            if not statistics:
                continue
            np.minimum(low, block.min(axis=0), out=low)
            np.maximum(high, block.max(axis=0), out=high)
            if self.kind == "standard":
                block64 = block.astype(np.float64)
                k = len(block64)
                block_mean = block64.mean(axis=0)
                block64 -= block_mean
                block_squares = np.einsum("ij,ij->j", block64, block64)
                delta = block_mean - mean
                total = count + k
                mean += delta * (k / total)
                squares += block_squares + delta * delta * (count * k / total)
                count = total
        if not statistics:
            self.offset, self.scale = None, None
        elif self.kind == "minmax":
            span = high - low
            self.offset, self.scale = low, np.where(span > 0, span, 1.0)
        else:
            constant = high == low  # exact, unlike a rounded std
            std = np.sqrt(squares / count)
            self.offset = mean
            self.scale = np.where(constant | (std == 0), 1.0, std)
        self._cast = {}
        return self

    def _fit_sparse(self, X: Any) -> Scaler:
        """A ``scipy.sparse`` X: nothing to learn but its width (:meth:`_check_sparse`)."""
        self._check_sparse(X)
        self.n_features = X.shape[1]
        self.offset, self.scale = None, None
        return self

    def _check_sparse(self, X: Any) -> None:
        """Only the kinds that keep zeros at 0 (``none``, ``divide``) take a sparse X:
        centring would make every entry nonzero, i.e. the matrix dense."""
        if self.kind not in ("none", "divide"):
            raise DataError(f"`X` is sparse: scaling {self.kind!r} would make it dense; use "
                            "'none' or 'divide'")
        if X.ndim != 2 or (self.n_features is not None and X.shape[1] != self.n_features):
            raise DataError(f"`X` has shape {X.shape}; this scaler takes "
                            f"{self.n_features} features")

    def transform(self, X: np.ndarray, dtype: Any = None) -> np.ndarray:
        """Scaled copy of ``X``: (X − offset) / scale.

        Parameters
        ----------
        X : ndarray of shape (n, n_features), or a scipy.sparse matrix (kinds ``none`` and
            ``divide``: the result is CSR)
        dtype : {"float32", "float64"}, optional
            Output dtype; default: ``X``'s dtype if it is float32 or float64, else float32.

        Returns
        -------
        ndarray of shape (n, n_features)
        """
        if is_scipy_sparse(X):
            self._check_sparse(X)
            if dtype is None:
                dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float32
            out = X.tocsr().astype(float_dtype(dtype), copy=True)  # stays sparse
            if self.kind == "divide":
                out.data /= out.dtype.type(self.divisor)
            return out
        X = np.asarray(X)
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float32
        dtype = float_dtype(dtype)
        self._check(X)
        out = np.array(X, dtype=dtype, copy=True)
        self._scale_in_place(out)
        return out

    def transform_into(self, X: np.ndarray, out: np.ndarray) -> None:
        """Write (X − offset) / scale into ``out``; allocates nothing after the first call.

        The per-batch input transform of ``training.fit`` (``input_transform``): raw rows of
        a memory-mapped file in, the network's inputs out.

        Parameters
        ----------
        X : ndarray of shape (m, n_features), any numeric dtype
        out : ndarray of shape (m, n_features), float32 or float64
            May be a strided view (the workspace's input buffer); written in place.
        """
        self._check(X)
        if out.shape != X.shape:
            raise DataError(f"`out` has shape {out.shape}; `X` has shape {X.shape}")
        np.copyto(out, X, casting="unsafe")
        self._scale_in_place(out)

    def _check(self, X: np.ndarray) -> None:
        if X.ndim != 2:
            raise DataError(f"`X` must have shape (n, n_features); got {X.shape}")
        if self.kind in ("minmax", "standard") and self.offset is None:
            raise ValueError(f"{self!r} is not fitted; call fit(X_train) first")
        if self.n_features is not None and X.shape[1] != self.n_features:
            raise DataError(
                f"`X` has {X.shape[1]} features; this scaler was fitted on {self.n_features}"
            )

    def _scale_in_place(self, out: np.ndarray) -> None:
        dtype = out.dtype
        if self.kind == "divide":
            out /= dtype.type(self.divisor)
        elif self.offset is not None and self.scale is not None:
            if dtype not in self._cast:  # offset and scale in the output's dtype, once
                self._cast[dtype] = (self.offset.astype(dtype), self.scale.astype(dtype))
            offset, scale = self._cast[dtype]
            out -= offset
            out /= scale

    def fit_transform(self, X: np.ndarray, dtype: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X, dtype)``."""
        return self.fit(X).transform(X, dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: kind, divisor, n_features, offset and scale lists."""
        return {
            "kind": self.kind,
            "divisor": self.divisor,
            "n_features": self.n_features,
            "offset": None if self.offset is None else self.offset.tolist(),
            "scale": None if self.scale is None else self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Rebuild a scaler from :meth:`to_dict` output (e.g. read from a model file).

        Raises
        ------
        DataError
            Missing keys, unknown kind, or offset/scale of the wrong length.
        """
        if not isinstance(d, dict) or "kind" not in d:
            raise DataError(f"scaler: expected a dict with a 'kind'; got {d!r}")
        try:
            scaler = cls(d["kind"], d.get("divisor"))
        except (ValueError, TypeError) as error:
            raise DataError(f"scaler: {error}") from None
        n_features = d.get("n_features")
        if n_features is not None and (
            isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1
        ):
            raise DataError(f"scaler: 'n_features' must be a positive integer; got {n_features!r}")
        scaler.n_features = n_features
        if scaler.kind in ("minmax", "standard") and n_features is not None:
            arrays = []
            for key in ("offset", "scale"):
                try:
                    array = np.asarray(d.get(key), dtype=np.float64)
                except (TypeError, ValueError):
                    array = None
                if array is None or array.shape != (n_features,) or not np.isfinite(array).all():
                    raise DataError(f"scaler: '{key}' must be {n_features} finite numbers")
                arrays.append(array)
            scaler.offset, scaler.scale = arrays
            scaler._cast = {}
            if (scaler.scale <= 0).any():
                raise DataError("scaler: 'scale' values must be > 0")
        return scaler

LABEL_KINDS = ("classes", "multilabel")


class LabelEncoder:
    """The user's labels ↔ what a network trains on, fitted once and saved with the model.

    Two kinds, never guessed from the values:

    - ``"classes"`` (one label per sample): class index k of the network's output stands for
      ``classes[k]`` — in the order given, or sorted when :meth:`fit` finds them in the data.
      ``encode`` maps labels to indices (an unseen label is an error); ``decode`` maps
      indices back.
    - ``"multilabel"`` (any number of k labels per sample): targets are an (m, k) matrix of
      0/1, one sigmoid output per label; ``decode`` thresholds outputs at ½ into 0/1 rows.

    Parameters
    ----------
    classes : sequence, optional
        The class labels (kind ``"classes"``), each once, in the order of the outputs.
    n_labels : int, optional
        The number of labels (kind ``"multilabel"``). Give exactly one of the two.
    """

    def __init__(self, classes: Any = None, *, n_labels: int | None = None) -> None:
        if (classes is None) == (n_labels is None):
            raise ConfigError("LabelEncoder needs exactly one of `classes` and `n_labels`")
        if classes is not None:
            values = _label_values(classes)
            if values.ndim != 1 or len(values) < 1 or values.dtype.kind not in "biufUS":
                raise ConfigError(f"`classes` must be a non-empty list of labels; got {classes!r}")
            if len(np.unique(values)) != len(values):
                raise ConfigError(f"`classes` lists a label twice: {_preview(values)}")
            self.kind, self.classes, self.n_labels = "classes", values, None
            self._sorter = np.argsort(values, kind="stable")
        else:
            if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)) \
                    or n_labels < 1:
                raise ConfigError(f"`n_labels` must be an integer >= 1; got {n_labels!r}")
            self.kind, self.classes, self.n_labels = "multilabel", None, int(n_labels)

    @classmethod
    def fit(cls, y: Any) -> LabelEncoder:
        """Kind ``"classes"`` from 1-D labels, ``"multilabel"`` from an (m, k) 0/1 matrix."""
        y = _label_values(y)
        if y.ndim == 1:
            return cls(np.unique(y))
        if y.ndim == 2 and _is_binary(y):
            return cls(n_labels=y.shape[1])
        raise DataError(
            f"`y` must be 1-D labels or an (m, k) matrix of 0/1 labels; got shape {y.shape}"
            + ("" if y.ndim != 2 else " with values other than 0 and 1")
        )

    @property
    def n_outputs(self) -> int:
        """Network outputs the labels need: one per class (a single one for two classes
        fits a sigmoid output too), one per label for multilabel."""
        return len(self.classes) if self.classes is not None else int(self.n_labels)

    def __repr__(self) -> str:
        if self.kind == "classes":
            return f"LabelEncoder(classes={self.classes.tolist()!r})"
        return f"LabelEncoder(n_labels={self.n_labels})"

    def encode(self, y: Any, name: str = "y") -> np.ndarray:
        """Class indices (m,) for ``"classes"``; the (m, k) 0/1 matrix for ``"multilabel"``."""
        y = _label_values(y)
        if self.kind == "multilabel":
            if y.ndim != 2 or y.shape[1] != self.n_labels or not _is_binary(y):
                raise DataError(
                    f"`{name}` must be an (m, {self.n_labels}) matrix of 0/1 labels; "
                    f"got shape {y.shape}"
                )
            return y.astype(np.float64)
        if y.ndim != 1:
            raise DataError(f"`{name}` must be 1-D labels; got shape {y.shape}")
        classes = self.classes
        try:
            position = np.searchsorted(classes, y, sorter=self._sorter)
        except TypeError:  # labels of another type than the classes (numbers vs strings)
            raise DataError(
                f"`{name}` has labels of type {y.dtype}; the model's classes are "
                f"{_preview(classes)}"
            ) from None
        index = self._sorter[np.clip(position, 0, len(classes) - 1)]
        unknown = classes[index] != y
        if np.any(unknown):
            raise DataError(
                f"`{name}` has label {y[unknown][0].item()!r} not among the model's classes "
                f"{_preview(classes)}"
            )
        return index.astype(np.int64)

    def decode(self, index_or_outputs: np.ndarray) -> np.ndarray:
        """Labels from class indices (``"classes"``) or 0/1 rows from outputs (multilabel)."""
        if self.kind == "multilabel":
            return (np.asarray(index_or_outputs) > 0.5).astype(np.int64)
        return self.classes[np.asarray(index_or_outputs)]

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "multilabel":
            return {"kind": "multilabel", "n_labels": self.n_labels}
        return {"kind": "classes", "classes": self.classes.tolist()}

    @classmethod
    def from_dict(cls, d: Any) -> LabelEncoder:
        """Rebuild from :meth:`to_dict` (e.g. read from a model file); DataError if malformed."""
        if not isinstance(d, dict) or d.get("kind") not in LABEL_KINDS:
            raise DataError(f"labels: expected a dict with kind classes or multilabel; got {d!r}")
        try:
            if d["kind"] == "classes":
                classes = d["classes"]
                if not isinstance(classes, list) or not classes or any(
                    isinstance(c, (list, dict)) or c is None for c in classes
                ):
                    raise ConfigError(f"'classes' must be a list of labels; got {classes!r}")
                return cls(classes)
            return cls(n_labels=d.get("n_labels"))
        except (ConfigError, KeyError, TypeError) as error:
            raise DataError(f"labels: {error}") from None


def _label_values(y: Any) -> np.ndarray:
    """Labels as an array of strings or numbers; an object array (a pandas column of
    strings) holding only strings, or only numbers, becomes one of those."""
    values = np.asarray(y)
    if values.dtype == object and values.size:
        items = values.ravel().tolist()
        if all(isinstance(v, str) for v in items):
            return values.astype(str)
        if all(isinstance(v, (bool, int, float, np.number, np.bool_)) for v in items):
            return np.asarray(items).reshape(values.shape)
    return values


def _is_binary(y: np.ndarray) -> bool:
    return y.dtype.kind in "biuf" and bool(np.isin(y, (0, 1)).all())


def _preview(classes: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(repr(c) for c in classes[:limit].tolist())
    return f"[{shown}{', …' if len(classes) > limit else ''}]"


def one_hot(y: np.ndarray, n_classes: int, dtype: Any = "float32") -> np.ndarray:
    """One-hot rows: ``Y[i, y[i]] = 1``, every other entry 0.

    Parameters
    ----------
    y : ndarray of shape (m,)
        Integer class indices in 0 … n_classes − 1.
    n_classes : int
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    ndarray of shape (m, n_classes)
    """
    y = np.asarray(y)
    dtype = float_dtype(dtype)
    if y.ndim != 1 or (y.dtype.kind not in "iu" and len(y)):
        raise ConfigError(f"`y` must be 1-D integer class indices; got {y.dtype} {y.shape}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ConfigError(f"`n_classes` must be an integer; got {n_classes!r}")
    if n_classes < 1:
        raise ConfigError(f"`n_classes` must be >= 1; got {n_classes}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ConfigError(f"`y` values must be in 0..{n_classes - 1}; got {y.min()}..{y.max()}")
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y.astype(np.intp)] = 1
    return Y


def train_val_split(
    X: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    rng: np.random.Generator,
    *,
    stratify: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a random validation set from training data.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
    y : ndarray of shape (n,) or (n, n_outputs)
    val_fraction : float
        In (0, 1); the validation set has ``ceil(val_fraction * n)`` samples.
    rng : numpy.random.Generator
    stratify : bool, default False
        Keep each class's proportion (``y`` must be class labels).

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarray
        In the order of :class:`Dataset`'s fields (not scikit-learn's).
    """
    val_fraction = check_split_fraction("val_fraction", val_fraction)
    if not isinstance(rng, np.random.Generator):
        raise ConfigTypeError(f"`rng` must be a numpy.random.Generator; got {type(rng).__name__}")
    X = X if is_scipy_sparse(X) else np.asarray(X)  # sparse rows are indexed as they are
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != len(y):
        raise DataError(f"`X` and `y` need the same number of samples; got {X.shape}, {y.shape}")
    train, val = split_indices(y, val_fraction, rng, stratify)
    return X[train], y[train], X[val], y[val]
