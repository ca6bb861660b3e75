"""Model: input scaling → Network → target inverse → labels, fitted and saved together.

A :class:`~deltaprop.network.Network` is the parameters and the equations: it takes inputs
already scaled, class indices and (for regression) targets in whatever units it was trained
on. A ``Model`` is what a user trains, saves and deploys — raw rows in, the user's labels or
targets in their own units out — so every path gives the same answer on the same raw rows:
``predict``, ``dp.load``, the command line, the ONNX export, the scikit-learn estimators and
the playground's export::

    raw x ──(x − offset) / scale──▶ Network ──▶ a^L ──▶ the user's label   (classifier)
                                                  ├──▶ 0/1 per label        (multilabel)
                                                  └──▶ a^L · s + μ          (regressor)

The preprocessing is fitted on the training rows of the first :meth:`Model.fit` (never on
validation or test rows) and saved in the model file next to the weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from deltaprop._validation import is_scipy_sparse
from deltaprop.errors import ConfigError, ConfigTypeError, DataError
from deltaprop.network import Network
from deltaprop.preprocessing import LabelEncoder, Scaler, one_hot

__all__ = ["Model"]


def _scaler(value: Any, name: str) -> Scaler | None:
    """A Scaler from a kind name ("standard", "minmax", "none"), a Scaler, or None."""
    if value is None or isinstance(value, Scaler):
        return value
    if isinstance(value, str):
        return Scaler(value)
    raise ConfigTypeError(f"`{name}` must be a Scaler, a scaling kind or None; got {value!r}")


class Model:
    """A trained model: input scaler → Network → target inverse transform → labels.

    Parameters
    ----------
    network : Network
        The parameters and the equations; used as is (not copied).
    scaler : Scaler or {"standard", "minmax", "none"}, default "standard"
        The input scaling; unfitted kinds are fitted on the first ``fit``'s training rows.
    target_scaler : Scaler or {"standard", "none"} or None, default "standard"
        Regression only: the network learns targets (y − μ)/s and ``predict`` maps its outputs
        back to y's units. Ignored (None) for classifiers.
    labels : LabelEncoder, sequence of labels, or None
        Classifiers only: the user's class labels in output order (a sequence), or a fitted
        encoder. None: fitted from the first ``fit``'s y (sorted labels; an (m, k) 0/1 matrix
        means k labels per sample, for sigmoid outputs with binary cross-entropy).
    feature_names : sequence of str, optional
        The input columns' names; taken from a DataFrame's columns by ``fit`` when not given.
    meta : dict, optional
        JSON-friendly notes saved with the model (data set, epochs, test metrics, …).
    """

    def __init__(
        self,
        network: Network,
        *,
        scaler: Scaler | str | None = "standard",
        target_scaler: Scaler | str | None = "standard",
        labels: LabelEncoder | Any = None,
        feature_names: Any = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(network, Network):
            raise ConfigTypeError(f"`network` must be a deltaprop.Network; got {network!r}")
        self.network = network
        self.scaler = _scaler(scaler, "scaler") or Scaler("none")
        self.target_scaler = None if network.is_classifier else _scaler(target_scaler,
                                                                          "target_scaler")
        if labels is not None and not network.is_classifier:
            raise ConfigError(f"`labels` apply to a classifier; this network's loss is "
                              f"{network.loss.name!r}")
        if labels is not None and not isinstance(labels, LabelEncoder):
            labels = LabelEncoder(labels)
        self.labels: LabelEncoder | None = labels
        if labels is not None:
            self._check_labels(labels, "the class labels list")
        self.feature_names: list[str] | None = None
        if feature_names is not None:
            self.feature_names = self._check_names(feature_names)
        self.meta: dict[str, Any] = dict(meta or {})

    # ----------------------------------------------------------------- description
    # The network's description, read-only, so a loaded model reads like the network it holds.
    @property
    def layers(self) -> list[Any]:
        return self.network.layers

    @property
    def sizes(self) -> list[int]:
        return self.network.sizes

    @property
    def dtype(self) -> np.dtype:
        return self.network.dtype

    @property
    def n_inputs(self) -> int:
        return self.network.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.network.n_outputs

    @property
    def is_classifier(self) -> bool:
        return self.network.is_classifier

    @property
    def task(self) -> str:
        """``"classification"``, ``"multilabel"`` or ``"regression"``: the labels decide for a
        classifier (k single labels may be told apart by k sigmoid outputs too)."""
        if self.labels is not None:
            return "multilabel" if self.labels.kind == "multilabel" else "classification"
        return self.network.task

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels in output order (single-label classifiers), else None."""
        return None if self.labels is None else self.labels.classes

    @property
    def data_seed(self) -> int:
        """The seed the training data was split (and drawn) with, from the metadata, so the
        test split of a named data set is the one the model was not trained on (default 0)."""
        seed = self.meta.get("data_seed", 0)
        return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0

    def config(self) -> dict[str, Any]:
        return self.network.config()

    def parameters(self) -> list[tuple[str, np.ndarray]]:
        return self.network.parameters()

    def n_parameters(self) -> int:
        return self.network.n_parameters()

    def __repr__(self) -> str:
        parts = [repr(self.network), f"scaler={self.scaler!r}"]
        if self.target_scaler is not None:
            parts.append(f"target_scaler={self.target_scaler!r}")
        if self.labels is not None:
            parts.append(f"labels={self.labels!r}")
        return f"Model({', '.join(parts)})"

    # ----------------------------------------------------------------- checks
    def _check_labels(self, labels: LabelEncoder, source: str) -> None:
        """Labels that fit the network's outputs, or an error naming ``source``."""
        net = self.network
        if labels.kind == "multilabel":
            if net.task != "multilabel" or labels.n_labels != net.n_outputs:
                raise ConfigError(
                    f"{labels.n_labels} labels per sample need {labels.n_labels} sigmoid outputs "
                    f"with loss binary_cross_entropy; the network has {net.n_outputs} "
                    f"{net.output.name} outputs with loss {net.loss.name!r}"
                )
        elif len(labels.classes) > net.n_classes:
            raise DataError(
                f"{source} {len(labels.classes)} classes; the network has {net.n_classes}"
            )

    def _check_names(self, names: Any) -> list[str]:
        names = [str(n) for n in names]
        if len(names) != self.n_inputs:
            raise ConfigError(
                f"`feature_names` has {len(names)} names; the network takes {self.n_inputs} inputs"
            )
        return names

    # ----------------------------------------------------------------- the pipeline
    def _matrix(self, X: Any, fitting: bool = False) -> np.ndarray:
        """Raw rows as a 2-D array; a DataFrame's columns are matched by name.

        On the first fit a DataFrame's column names become ``feature_names``. Later, a
        DataFrame with those names in another order, or with extra columns (the target
        still in it), is reordered and cut to them.
        """
        if is_scipy_sparse(X):  # stays sparse: the network's first layer multiplies it as is
            return X
        if getattr(X, "columns", None) is not None and not isinstance(X, np.ndarray):
            from deltaprop.data import features_from_frame

            names = [str(c) for c in X.columns]
            if self.feature_names is None and fitting and len(names) == self.n_inputs:
                self.feature_names = names
            X, _ = features_from_frame(X, feature_names=self.feature_names,
                                       dtype="float64")
        X = np.asarray(X)
        if X.ndim == 1 and X.shape[0] == self.n_inputs:
            X = X[None, :]
        return X

    def transform(self, X: Any) -> np.ndarray:
        """Raw rows → the network's inputs: (x − offset)/scale, in the network's dtype."""
        X = self._matrix(X)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise DataError(f"`X` must have shape (m, {self.n_inputs}); got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise DataError(f"`X` must hold numbers; got dtype {X.dtype}")
        return self.network.check_X(self.scaler.transform(X, self.dtype.name))

    def encode_targets(self, y: Any, name: str = "y") -> np.ndarray:
        """The user's y → what the network trains on (class indices, 0/1 rows, or scaled
        targets); the preprocessing must be fitted."""
        net = self.network
        if net.is_classifier:
            if self.labels is None:  # no labels of its own: class indices, as its network
                return np.asarray(y)
            encoded = self.labels.encode(y, name)
            if self.labels.kind == "classes" and net.task == "multilabel":
                return one_hot(encoded, net.n_outputs, net.dtype)  # k sigmoids, one label each
            return encoded
        Y = _columns(y, name)
        if self.target_scaler is not None:
            Y = self.target_scaler.transform(Y, net.dtype.name)
        return Y

    def decode_outputs(self, A: np.ndarray) -> np.ndarray:
        """Network outputs a^L → predictions: labels, 0/1 label rows, or targets in y's units."""
        if self.labels is not None:
            if self.labels.kind == "multilabel":
                return self.labels.decode(A)
            return self.labels.decode(self.network.index_of(A))
        if self.network.is_classifier:
            return self.network.decide(A)
        return self._untransform_targets(A)

    def _untransform_targets(self, A: np.ndarray) -> np.ndarray:
        """a^L · s + μ: regression outputs in the targets' own units (float64)."""
        if self.target_scaler is None or self.target_scaler.kind == "none":
            return np.asarray(A, dtype=np.float64)
        t = self.target_scaler
        if t.kind == "divide":
            return A * np.float64(t.divisor)
        return A * np.asarray(t.scale) + np.asarray(t.offset)

    # ----------------------------------------------------------------- training
    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None,
            trainer: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """Fit the preprocessing (first call only) and train the network on (X, y).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_0)
            Raw rows; the scaler is fitted on them (training rows only). A NumPy memory
            map is never read whole: the scaler's statistics take one streaming pass, and
            training reads the file window by window and scales each batch as it goes
            (``input_transform``; ``shuffle="chunks"`` unless given; docs/data.md).
        y : array-like
            The user's labels (1-D), an (n, k) 0/1 matrix (multilabel), or regression
            targets (n,) / (n, n_L).
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Raw, like (X, y); transformed with the training rows' preprocessing.
        trainer : callable, optional
            The training loop, ``trainer(network, X, Y, **kwargs)``: :func:`training.fit`
            (default) or :func:`deltaprop.distributed.fit`.
        **kwargs
            Passed to the training loop (epochs, batch_size, optimizer, …).

        Returns
        -------
        History
        """
        X = self._matrix(X, fitting=True)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise DataError(f"`X` must have shape (m, {self.n_inputs}); got shape {X.shape}")
        if not self.scaler.is_fitted:
            self.scaler.fit(X)
        if self.network.is_classifier and self.labels is None:
            labels = LabelEncoder.fit(y)
            self._check_labels(labels, "`y` has labels of")
            self.labels = labels
        elif self.target_scaler is not None and not self.target_scaler.is_fitted:
            self.target_scaler.fit(_columns(y, "y"))
        from deltaprop import streaming

        Y_net = self.encode_targets(y)
        mapped = streaming.is_memory_mapped(X)
        if mapped:  # scaled batch by batch as training reads the file: never whole
            X_net = X
            if self.scaler.kind != "none":
                kwargs.setdefault("input_transform", self.scaler.transform_into)
            kwargs.setdefault("shuffle", "chunks")
        else:
            X_net = self.transform(X)
        if validation_data is not None:
            X_val, y_val, *weights = validation_data
            if not mapped:  # else fit sends it through the input transform, once
                X_val = self.transform(X_val)
            validation_data = (X_val, self.encode_targets(y_val, "validation y"), *weights)
        if trainer is None:
            from deltaprop.training import fit as trainer
        return trainer(self.network, X_net, Y_net, validation_data=validation_data, **kwargs)

    # ----------------------------------------------------------------- inference
    def outputs(self, X: Any) -> np.ndarray:
        """The network's outputs on raw rows, in the user's units: class or label
        probabilities a^L for a classifier, targets in y's units for a regressor. The ONNX
        export's ``output`` is exactly this."""
        A = self.network.forward(self.transform(X))
        return A if self.network.is_classifier else self._untransform_targets(A)

    def predict(self, X: Any) -> np.ndarray:
        """The user's labels (m,), 0/1 label rows (m, k), or targets (m, n_L) in y's units."""
        return self.decode_outputs(self.network.forward(self.transform(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """One column per class (both columns for one sigmoid output), or per label."""
        if not self.network.is_classifier:
            raise ConfigError("predict_proba needs a classifier; this model is a regressor")
        A = self.network.forward(self.transform(X))
        if A.shape[1] == 1:
            return np.hstack([1 - A, A])
        return A

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """The loss and the task's metrics on raw (X, y).

        Classification: ``loss``, ``accuracy``. Multilabel: ``loss``, ``label_accuracy``,
        ``subset_accuracy``. Regression, in y's own units: ``loss`` (½‖a − y‖² per sample,
        as ``mse``; a ``poisson`` network's own loss), ``rmse`` and ``r2``.
        """
        X_net = self.transform(X)
        if self.network.is_classifier:
            Y = self.network.targets(self.encode_targets(y), X_net.shape[0], "y")
            return self.network.evaluate_targets(X_net, Y, task=self.task)
        Y = _columns(y, "y").astype(np.float64)
        if Y.shape != (X_net.shape[0], self.n_outputs):
            raise DataError(f"`y` must have shape ({X_net.shape[0]}, {self.n_outputs}); "
                            f"got {Y.shape}")
        error = self._untransform_targets(self.network.forward(X_net)) - Y
        squared = error * error
        total = float(np.sum((Y - Y.mean(axis=0)) ** 2))
        loss = float(0.5 * np.mean(np.sum(squared, axis=1)))
        if self.network.loss.name != "mse":  # poisson: its own loss (targets are not scaled)
            Y_net = self.network.targets(self.encode_targets(y), X_net.shape[0], "y")
            loss = self.network.evaluate_targets(X_net, Y_net)["loss"]
        return {
            "loss": loss,
            "rmse": float(np.sqrt(np.mean(squared))),
            "r2": 1 - float(np.sum(squared)) / total if total > 0 else float("nan"),
        }

    # ----------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Write a ``.safetensors`` model file; see :func:`deltaprop.io.save`."""
        from deltaprop import io

        io.save(self, path, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """The model stored in a file (the same as ``dp.load``)."""
        from deltaprop import io

        return io.load(path)

    def to_onnx(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Write an ONNX graph taking raw rows (needs ``deltaprop[onnx]``)."""
        from deltaprop import onnx_export

        onnx_export.export(self, path, **kwargs)

    def preprocessing(self) -> dict[str, Any]:
        """The fitted preprocessing as JSON-friendly values (what the model file stores)."""
        return {
            "input": self.scaler.to_dict(),
            "target": None if self.target_scaler is None else self.target_scaler.to_dict(),
            "labels": None if self.labels is None else self.labels.to_dict(),
            "feature_names": self.feature_names,
        }

    @classmethod
    def from_preprocessing(cls, network: Network, pre: dict[str, Any],
                           meta: dict[str, Any] | None = None) -> Model:
        """Rebuild from :meth:`preprocessing`'s dict (DataError if it is malformed)."""
        if not isinstance(pre, dict):
            raise DataError(f"preprocessing must be a dict; got {pre!r}")
        target = pre.get("target")
        labels = pre.get("labels")
        names = pre.get("feature_names")
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(n, str) for n in names)):
            raise DataError("preprocessing: 'feature_names' must be a list of strings")
        try:
            model = cls(
                network,
                scaler=Scaler.from_dict(pre.get("input") or {"kind": "none"}),
                target_scaler=None if target is None else Scaler.from_dict(target),
                labels=None if labels is None else LabelEncoder.from_dict(labels),
                feature_names=names,
                meta=meta,
            )
        except ConfigError as e:
            raise DataError(f"preprocessing: {e}") from None
        scaler = model.scaler
        if scaler.n_features is not None and scaler.n_features != network.n_inputs:
            raise DataError(f"preprocessing: the scaler has {scaler.n_features} features; the "
                            f"network takes {network.n_inputs} inputs")
        if not scaler.is_fitted:
            raise DataError(f"preprocessing: the {scaler.kind} scaler has no statistics")
        return model


def _columns(y: Any, name: str) -> np.ndarray:
    """Regression targets as an (n, n_outputs) float matrix."""
    Y = np.asarray(y)
    if Y.dtype.kind not in "biuf":
        raise DataError(f"`{name}` must hold numbers for a regressor; got dtype {Y.dtype}")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise DataError(f"`{name}` must have shape (n,) or (n, n_outputs); got {Y.shape}")
    return Y
