"""Train on TF-IDF-like sparse rows without ever forming the dense matrix; report peak memory.

A random CSR matrix of 20000 documents × 50000 terms at 0.1 % density (50 terms a document,
positive weights, each row scaled to unit length, as TF-IDF's are) with labels from a sparse
linear rule. ``deltaprop.Network.fit`` trains on it, then ``deltaprop.sklearn.MLPClassifier``;
their first layer multiplies the CSR rows as they are. The dense float32 matrix would take
3815 MiB; the process runs under an address-space limit of ``--limit-gb`` (3 GiB), so forming
it anywhere fails with MemoryError instead of passing unnoticed.

    python tests/sparse_memory.py [--epochs 2] [--hidden 64]       # prints one JSON object

Peak memory is the process's own high-water mark of resident memory (``VmHWM`` in
/proc/self/status), imports included. Not ``getrusage``'s ``ru_maxrss``: Linux carries that
over from the parent across fork and exec, so a child of a 1 GiB pytest process would
report 1 GiB. tests/test_training.py runs this script in a child process and checks the
figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def tfidf_like(rows: int, cols: int, per_row: int, seed: int) -> tuple:
    """(X, y): a CSR float32 matrix with ``per_row`` terms a row, rows of unit length, and
    0/1 labels from the sign of a sparse linear score."""
    import numpy as np
    import scipy.sparse

    rng = np.random.default_rng(seed)
    indices = rng.integers(0, cols, size=(rows, per_row))
    data = rng.random((rows, per_row)).astype(np.float32)
    data /= np.sqrt((data**2).sum(axis=1, keepdims=True))  # unit-length rows, as TF-IDF
    indptr = np.arange(0, rows * per_row + 1, per_row)
    X = scipy.sparse.csr_matrix((data.ravel(), indices.ravel(), indptr), shape=(rows, cols))
    X.sum_duplicates()  # a term drawn twice in a row becomes one entry
    w = rng.normal(size=cols).astype(np.float32)
    score = X @ w
    return X, (score > np.median(score)).astype(np.int64)


def peak_resident_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM; the module docstring says why)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # the line reads "VmHWM:   201234 kB"
    raise RuntimeError("no VmHWM in /proc/self/status (this measurement needs Linux)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--cols", type=int, default=50000)
    parser.add_argument("--per-row", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit-gb", type=float, default=3.0)
    args = parser.parse_args()
    limit = int(args.limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    import warnings

    import deltaprop as dp
    from deltaprop.sklearn import MLPClassifier

    X, y = tfidf_like(args.rows, args.cols, args.per_row, seed=0)
    started = time.perf_counter()
    net = dp.Network([args.cols, args.hidden, 2], seed=0)  # float32
    hist = net.fit(X, y, epochs=args.epochs, batch_size=200, verbose=0,
                   optimizer=dp.optim.Adam(lr=1e-3))
    network_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: a measurement, not a fit to keep
        est = MLPClassifier(hidden_layer_sizes=(args.hidden,), max_iter=args.epochs,
                            random_state=0).fit(X, y)
    estimator_seconds = time.perf_counter() - started
    peak = peak_resident_mib()
    print(json.dumps({
        "shape": list(X.shape), "nnz": int(X.nnz), "density": X.nnz / (X.shape[0] * X.shape[1]),
        "csr_mib": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20,
        "dense_float32_mib": X.shape[0] * X.shape[1] * 4 / 2**20,
        "address_space_limit_mib": limit / 2**20,
        "peak_rss_mib": peak,
        "network_fit_seconds": network_seconds, "network_train_accuracy": hist.accuracy[-1],
        "estimator_fit_seconds": estimator_seconds, "estimator_dtype": str(est.network_.dtype),
        "epochs": args.epochs, "hidden": args.hidden,
    }))


if __name__ == "__main__":
    main()
