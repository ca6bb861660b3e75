"""deltaprop.sklearn vs sklearn.neural_network on digits, breast-cancer and diabetes.

Both estimators get the same hyperparameters (``CASES``) and the same pipeline (standardized
inputs; standardized targets for the regressor), on the same stratified 75/25 split. Scores
are test accuracy (classifiers) or test R² (regressor), in percent, averaged over seeds 0, 1, 2
(``random_state``; the split is fixed). Fit time is the median over those three fits, each run
on one BLAS thread (``threadpool_limits(1)``) so that neither side benefits from, or suffers
by, the other processes on a shared machine. deltaprop runs in float32 (``dtype="float32"``;
its default ``"auto"`` would follow the float64 input, as scikit-learn does); scikit-learn in
float64; ``--dtype float64`` compares like with like.

    PYTHONPATH=src python benchmarks/bench_sklearn.py [--dtype float32|float64]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from deltaprop.sklearn import MLPClassifier, MLPRegressor

# data set → (loader, is_classifier, shared hyperparameters)
CASES = {
    "digits": (load_digits, True, {"hidden_layer_sizes": (100,), "max_iter": 200}),
    "breast_cancer": (load_breast_cancer, True, {"hidden_layer_sizes": (100,), "max_iter": 200}),
    "diabetes": (
        load_diabetes,
        False,
        {"hidden_layer_sizes": (16,), "learning_rate_init": 1e-3, "max_iter": 200, "alpha": 10.0},
    ),
}
SEEDS = (0, 1, 2)


def make(estimator_class, is_classifier, params, seed, **extra):
    est = estimator_class(random_state=seed, **params, **extra)
    if not is_classifier:
        est = TransformedTargetRegressor(est, transformer=StandardScaler())
    return make_pipeline(StandardScaler(), est)


def run(name, dtype="float32", seeds=SEEDS):
    """{"sklearn": (scores, times), "deltaprop": (scores, times)} for data set ``name``."""
    loader, is_classifier, params = CASES[name]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y if is_classifier else None
    )
    ours = MLPClassifier if is_classifier else MLPRegressor
    theirs = SkClassifier if is_classifier else SkRegressor
    out = {}
    for label, cls, extra in (("sklearn", theirs, {}), ("deltaprop", ours, {"dtype": dtype})):
        scores, times = [], []
        for seed in seeds:
            model = make(cls, is_classifier, params, seed, **extra)
            with threadpool_limits(1), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                started = time.perf_counter()
                model.fit(X_train, y_train)
                times.append(time.perf_counter() - started)
            scores.append(100 * model.score(X_test, y_test))
        out[label] = (scores, times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    print(f"| data set | metric | scikit-learn | deltaprop ({args.dtype}) | Δ (pp) "
          "| sklearn fit s | deltaprop fit s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (_, is_classifier, _) in CASES.items():
        res = run(name, args.dtype)
        sk_scores, sk_times = res["sklearn"]
        dp_scores, dp_times = res["deltaprop"]
        sk, dp = statistics.mean(sk_scores), statistics.mean(dp_scores)
        sk_t, dp_t = statistics.median(sk_times), statistics.median(dp_times)
        metric = "accuracy %" if is_classifier else "R² × 100"
        print(f"| {name} | {metric} | {sk:.2f} | {dp:.2f} | {dp - sk:+.2f} "
              f"| {sk_t:.2f} | {dp_t:.2f} | {sk_t / dp_t:.1f}× |")


if __name__ == "__main__":
    main()
