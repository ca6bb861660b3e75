"""The playground's 2-D data: generated sets, an uploaded CSV, points added by clicking.

Every set is a :class:`PlaneData`: raw points (x1, x2) as float64 rows, labels (class
indices) or targets (numbers), a train/test split and the square of the plane that the page
draws. circles, xor, moons and spirals are the library's own generators
(:mod:`deltaprop.datasets`); blobs (Gaussian clusters, 2–6 classes), plane and multigauss
(regression) are drawn here. All randomness comes from ``numpy.random.default_rng(data_seed)``.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from deltaprop import datasets
from deltaprop.errors import DataError
from deltaprop.preprocessing import split_indices

MAX_UPLOAD_BYTES = 1_000_000  # a CSV upload larger than this is refused (413)
MAX_UPLOAD_ROWS = 5000
MAX_CLASSES = 10  # the page has a colour for each
MAX_ADDED = 1000  # points added by clicking, in all
_LIBRARY = {
    "circles": datasets.load_circles,
    "xor": datasets.load_xor,
    "moons": datasets.load_moons,
    "spirals": datasets.load_spirals,
}


@dataclass(frozen=True)
class PlaneData:
    """One data set in the plane.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, 2), float64
        Raw points (x1, x2), one per row.
    y_train, y_test : ndarray of shape (n,)
        int64 class indices (classification) or float64 targets (regression).
    task : {"classification", "regression"}
    classes : list of str or None
        Each class index's name; None for regression.
    name : str
    domain : (x1_low, x1_high, x2_low, x2_high)
        The square of the plane that the page draws and the heatmaps cover.
    added : int
        Points added to the training set by clicking.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: list[str] | None
    name: str
    domain: tuple[float, float, float, float]
    added: int = 0

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)

    def points(self, split: str) -> list[list[float]]:
        """Rows [x1, x2, label] of the ``train`` or ``test`` split, JSON-ready."""
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        return np.column_stack([X, y]).tolist()


def domain_of(X: np.ndarray) -> tuple[float, float, float, float]:
    """A square around the points with a 10 % margin, its sides rounded out to 0.1."""
    low, high = X.min(axis=0), X.max(axis=0)
    center = (low + high) / 2
    half = math.ceil(max(float((high - low).max()) / 2 * 1.1, 0.5) * 10) / 10
    c1, c2 = (round(float(c), 1) for c in center)
    return (c1 - half, c1 + half, c2 - half, c2 + half)


def _split(name: str, X: np.ndarray, y: np.ndarray, task: str, classes: list[str] | None,
           test_size: float, rng: np.random.Generator) -> PlaneData:
    train, test = split_indices(y, test_size, rng, stratify=task == "classification")
    return PlaneData(X[train], y[train], X[test], y[test], task, classes, name, domain_of(X))


def _blobs(n: int, k: int, noise: float, rng: np.random.Generator) -> tuple[Any, Any]:
    """k Gaussian clusters (σ = 0.15) whose centers sit on a circle of radius 0.6."""
    sizes = [n // k + (c < n % k) for c in range(k)]
    angle = 2 * np.pi * np.arange(k) / k + np.pi / 4
    centers = 0.6 * np.column_stack([np.cos(angle), np.sin(angle)])
    X = np.concatenate([c + 0.15 * rng.standard_normal((s, 2)) for c, s in zip(centers, sizes,
                                                                              strict=True)])
    X += noise * rng.standard_normal(X.shape)
    return X, np.repeat(np.arange(k, dtype=np.int64), sizes)


# multigauss: bumps of height ±1 and width 0.25 on a 3 × 2 grid, signs alternating
_BUMPS = [(-0.6, 0.4, 1.0), (0.0, 0.4, -1.0), (0.6, 0.4, 1.0),
          (-0.6, -0.4, -1.0), (0.0, -0.4, 1.0), (0.6, -0.4, -1.0)]


def _regression(name: str, n: int, noise: float, rng: np.random.Generator) -> tuple[Any, Any]:
    """Points uniform in [−1, 1]², targets of a plane or of Gaussian bumps, plus noise."""
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    if name == "plane":
        y = (X[:, 0] + X[:, 1]) / 2
    else:
        y = sum(s * np.exp(-((X[:, 0] - a) ** 2 + (X[:, 1] - b) ** 2) / (2 * 0.25**2))
                for a, b, s in _BUMPS)
    return X, y + noise * rng.standard_normal(n)


def generate(config: dict[str, Any], upload: PlaneData | None = None) -> PlaneData:
    """The data set the settings describe (``dataset``, ``n_samples``, ``n_classes``,
    ``noise``, ``test_size``, ``data_seed``); ``csv`` splits the uploaded rows again."""
    name, n, noise = config["dataset"], config["n_samples"], config["noise"]
    test_size, seed = config["test_size"], config["data_seed"]
    rng = np.random.default_rng(seed)
    if name == "csv":
        if upload is None:
            raise DataError("dataset 'csv' needs an uploaded CSV file first")
        X = np.concatenate([upload.X_train, upload.X_test])
        y = np.concatenate([upload.y_train, upload.y_test])
        return _split(name, X, y, upload.task, upload.classes, test_size, rng)
    if name in _LIBRARY:
        extra = {"n_classes": config["n_classes"]} if name == "spirals" else {}
        d = _LIBRARY[name](n_samples=n, noise=noise, seed=seed, dtype="float64",
                           test_size=test_size, **extra)
        X = np.concatenate([d.X_train, d.X_test])
        return PlaneData(d.X_train, d.y_train, d.X_test, d.y_test, "classification",
                         list(d.class_names or []), name, domain_of(X))
    if name == "blobs":
        k = config["n_classes"]
        X, y = _blobs(n, k, noise, rng)
        return _split(name, X, y, "classification", [f"blob {c}" for c in range(k)],
                      test_size, rng)
    X, y = _regression(name, n, noise, rng)
    return _split(name, X, y, "regression", None, test_size, rng)


def preview(name: str) -> dict[str, Any]:
    """A small noiseless sample of a data set, for the page's thumbnails."""
    config = {"dataset": name, "n_samples": 200, "noise": 0.0, "test_size": 0.5,
              "data_seed": 0, "n_classes": 3}
    d = generate(config)
    return {"name": name, "task": d.task, "domain": d.domain, "points": d.points("train")}


def add_points(data: PlaneData, rows: Any) -> PlaneData:
    """``data`` with points [x1, x2, label] added to its training set.

    Raises
    ------
    ValueError
        For rows that are not [x1, x2, label] numbers, a label that is not one of the
        classes, or more than :data:`MAX_ADDED` added points in all.
    """
    if not isinstance(rows, list) or not rows:
        raise DataError("`points` must be a non-empty list of [x1, x2, label] rows")
    for row in rows:
        if (not isinstance(row, list) or len(row) != 3 or
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) and
                        math.isfinite(v) for v in row)):
            raise DataError(f"each point must be [x1, x2, label], three finite numbers; "
                             f"got {row!r}")
    if data.added + len(rows) > MAX_ADDED:
        raise DataError(f"at most {MAX_ADDED} points can be added; reset the data first")
    new = np.array(rows, dtype=np.float64)
    if data.task == "classification":
        labels = new[:, 2]
        bad = labels[(labels != np.round(labels)) | (labels < 0) | (labels >= data.n_classes)]
        if bad.size:
            raise DataError(f"label {bad[0]:g} is not a class index 0..{data.n_classes - 1}")
        y_new = labels.astype(np.int64)
    else:
        y_new = new[:, 2]
    return replace(data, X_train=np.concatenate([data.X_train, new[:, :2]]),
                   y_train=np.concatenate([data.y_train, y_new]), added=data.added + len(rows))


def read_csv(content: bytes, test_size: float, seed: int) -> PlaneData:
    """An uploaded CSV file — a header, then rows of two numeric features and a label —
    split into train and test by the library's :func:`~deltaprop.datasets.load_csv`.

    Raises
    ------
    DataError
        Naming ``upload.csv`` and what is wrong: not 2 features, too many rows or classes,
        or anything ``load_csv`` refuses (no header, a non-numeric cell, …).
    """
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "upload.csv")
        with open(path, "wb") as f:
            f.write(content)
        try:
            d = datasets.load_csv(path, seed=seed, dtype="float64", test_size=test_size)
        except DataError as e:
            raise DataError(str(e).replace(path, "upload.csv")) from None
    n = len(d.y_train) + len(d.y_test)
    if d.n_features != 2:
        raise DataError(f"upload.csv: needs 2 feature columns and a label; got "
                         f"{d.n_features} features")
    if d.y_train.ndim != 1:
        raise DataError("upload.csv: needs one label column")
    if n > MAX_UPLOAD_ROWS:
        raise DataError(f"upload.csv: at most {MAX_UPLOAD_ROWS} rows; got {n}")
    if d.n_classes is not None and d.n_classes > MAX_CLASSES:
        raise DataError(f"upload.csv: at most {MAX_CLASSES} classes; got {d.n_classes}")
    X = np.concatenate([d.X_train, d.X_test])
    return PlaneData(d.X_train, d.y_train, d.X_test, d.y_test, d.task, d.class_names,
                     "csv", domain_of(X))


def to_csv(data: PlaneData) -> str:
    """The data as CSV: x1, x2, label, split (train/test) — for the exported snippet."""
    lines = ["x1,x2,label,split"]
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
        for (x1, x2), label in zip(X.tolist(), y.tolist(), strict=True):
            lines.append(f"{x1!r},{x2!r},{label!r},{split}")
    return "\n".join(lines) + "\n"
