"""MPI data-parallel gradient sums.

The mini-batch gradient is a sum over samples of per-sample gradients (seed 002), so the sum
splits across processes. Every process (MPI rank) holds the full training data and the same
network; for each global mini-batch of m rows — the same shuffled rows on every rank, since
every rank's generator starts from the same seed — rank k computes the gradient *sum*
(r = 1) over its contiguous share of the rows, one in-place ``Allreduce(SUM)`` on a single
contiguous buffer adds the shares, and every rank scales by the global r (1/m for the mean)
and steps its optimizer identically. Parameters are broadcast from rank 0 at the start, so
they start — and stay — bitwise identical.

The buffer exchanged per step holds, in this order, every ∇W^l and ∇b^l (the local
workspace's gradient arrays are views into it, so nothing is packed), the batch loss, and for
a classifier the batch's output rows A^L (each rank fills its own rows, zeros elsewhere) so
that accuracy is reported exactly::

    [ ∇W^1 | ∇b^1 | ∇W^2 | … | ∇b^L | loss | A^L (m × n_L, classifiers only) ]

Only collectives on NumPy buffers are used (``Bcast``, ``Allreduce``, ``Allgather``), never
mpi4py's pickle-based lowercase methods.

Faults: when any rank raises, :func:`abort_on_error` makes Python's exit call
``MPI_Abort``, which ends every rank (a plain exit would leave the others waiting in a
collective forever); a rank killed by a signal makes ``mpirun`` end the job.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from deltaprop import training
from deltaprop.errors import ConfigError, DeltapropError
from deltaprop.network import Network
from deltaprop.workspace import Workspace

ROOT = 0


class MPIUnavailable(DeltapropError, OSError):
    """mpi4py (or an MPI library) is not installed: ``pip install 'deltaprop[mpi]'``."""


class DistributedMismatch(DeltapropError, ValueError):
    """The ranks disagree on something they must share (data size, seed, network shape)."""


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:  # mpi4py missing, or present without a loadable MPI library
        raise MPIUnavailable(
            f"distributed training needs mpi4py and an MPI library ({e}); "
            "install them with: pip install 'deltaprop[mpi]'"
        ) from None
    return MPI


def world() -> Any:
    """``MPI.COMM_WORLD`` (every process started by ``mpirun``)."""
    return _mpi().COMM_WORLD


def is_root(comm: Any = None) -> bool:
    """True on rank 0, the rank that reports, writes checkpoints and the model."""
    return (comm if comm is not None else world()).Get_rank() == ROOT


def share(m: int, size: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous rows [lo, hi) of a batch of ``m`` rows split over ``size``.

    The first ``m mod size`` ranks take one row more: counts differ by at most 1, and a rank
    may get none when m < size.
    """
    base, extra = divmod(m, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


@contextlib.contextmanager
def abort_on_error(comm: Any = None) -> Iterator[None]:
    """On any exception, let it propagate, then end *every* rank with ``MPI_Abort`` at exit.

    One rank leaving by an exception would otherwise leave the others blocked in their next
    collective. The exception still reaches the caller (the command line prints its
    ``error: …`` line); mpi4py calls ``Abort`` with the exit status when Python exits.
    """
    try:
        yield
    except BaseException as e:
        if (comm if comm is not None else world()).Get_size() > 1:
            from mpi4py.run import set_abort_status

            set_abort_status(e if isinstance(e, (SystemExit, KeyboardInterrupt)) else 1)
        raise


def broadcast_parameters(net: Network, comm: Any = None) -> None:
    """Copy rank 0's parameters into every rank's network, in place (one ``Bcast`` each)."""
    comm = comm if comm is not None else world()
    for _, p in net.parameters():
        comm.Bcast(p, root=ROOT)  # parameters are C-contiguous arrays owned by the layers


def parameters_digest(net: Network) -> bytes:
    """SHA-256 of every parameter's bytes, in ``net.parameters()`` order."""
    h = hashlib.sha256()
    for _, p in net.parameters():
        h.update(np.ascontiguousarray(p).tobytes())
    return h.digest()


def ranks_in_sync(net: Network, comm: Any = None) -> bool:
    """True on every rank when all ranks' parameters are bitwise identical (one Allgather)."""
    comm = comm if comm is not None else world()
    mine = np.frombuffer(parameters_digest(net), dtype=np.uint8)
    everyone = np.empty((comm.Get_size(), mine.size), dtype=np.uint8)
    comm.Allgather(mine, everyone)
    return bool((everyone == everyone[ROOT]).all())


def _rng_words(net: Network) -> np.ndarray:
    """The generator's state as integers (PCG64: 128-bit state and increment in 64-bit words)."""
    state = net.rng.bit_generator.state
    words: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                walk(value[key])
        elif isinstance(value, (int, np.integer)):
            value = int(value)
            words.extend((value >> s) & 0xFFFFFFFFFFFFFFFF for s in (0, 64))
        elif isinstance(value, np.ndarray):
            words.extend(int(v) for v in value.ravel().astype(np.uint64))

    walk({k: v for k, v in state.items() if k != "bit_generator"})
    return np.array(words, dtype=np.uint64)


def check_same_start(net: Network, n: int, comm: Any = None) -> None:
    """Raise ``DistributedMismatch`` on every rank unless all ranks have the same number of
    training samples, network sizes and generator state (hence the same shuffles)."""
    comm = comm if comm is not None else world()
    mine = np.concatenate(
        [np.array([n, len(net.sizes), *net.sizes], dtype=np.uint64), _rng_words(net)]
    )
    size = np.array([mine.size], dtype=np.int64)
    largest = np.empty_like(size)
    comm.Allreduce(size, largest, op=_mpi().MAX)
    root = np.zeros(int(largest[0]), dtype=np.uint64)
    root[: mine.size] = mine
    comm.Bcast(root, root=ROOT)
    differs = np.array([int(root.size != mine.size or not np.array_equal(root, mine))],
                       dtype=np.int64)
    comm.Allreduce(_mpi().IN_PLACE, differs, op=_mpi().SUM)
    if differs[0]:
        raise DistributedMismatch(
            f"{int(differs[0])} of {comm.Get_size()} ranks differ from rank 0 in training-set "
            "size, network sizes or random generator state; every rank must load the same "
            "data and build the network with the same seed"
        )


class AllreduceBackprop:
    """``training.fit``'s ``backprop``: this rank's share of the batch, summed over all ranks.

    Called with fit's workspace holding the whole global batch, it computes the gradient sum
    over rows [lo, hi) in its own workspace (whose ∇W, ∇b are views of one flat buffer),
    adds the loss and (for a classifier) its output rows to the buffer, runs one in-place
    ``Allreduce(SUM)``, and writes r × the sums into fit's ∇W, ∇b and the output rows into
    its A^L — what ``net.backprop_into(ws, r)`` computes on one process, up to the order of
    the additions. ``ws.delta`` is not filled (each rank only has its rows' δ).

    Parameters
    ----------
    net : Network
    m : int
        The global batch size (the largest batch fit will pass).
    comm : an mpi4py communicator
    """

    def __init__(self, net: Network, m: int, comm: Any) -> None:
        self.net, self.comm = net, comm
        self.size, self.rank = comm.Get_size(), comm.Get_rank()
        self._sum = _mpi().SUM
        self._in_place = _mpi().IN_PLACE
        lo, hi = share(m, self.size, self.rank)
        self.ws: Workspace | None = net.workspace(hi - lo) if hi > lo else None
        layers = net.layers
        n_L = net.n_outputs
        sizes = [layer.W.size for layer in layers]
        sizes += [0 if layer.b is None else layer.b.size for layer in layers]
        n_grad = sum(sizes)
        self.n_grad = n_grad
        self.outputs = net.is_classifier  # accuracy needs every row's A^L
        total = n_grad + 1 + (m * n_L if self.outputs else 0)
        self.buffer = np.zeros(total, dtype=net.dtype)
        # Views into the buffer, in the fixed order W^1, b^1, W^2, … (biases that exist).
        self.nabla_W: list[np.ndarray] = []
        self.nabla_b: list[np.ndarray | None] = []
        offset = 0
        for layer in layers:
            # laid out like W (column-major), so the optimizer's sweeps run in one order
            self.nabla_W.append(
                self._view(offset, layer.W.shape, "F" if layer.W.flags.f_contiguous else "C")
            )
            offset += layer.W.size
            if layer.b is None:
                self.nabla_b.append(None)
            else:
                self.nabla_b.append(self._view(offset, layer.b.shape))
                offset += layer.b.size
        self.loss = self.buffer[n_grad : n_grad + 1]
        self.A_L = self._view(n_grad + 1, (m, n_L)) if self.outputs else None
        if self.ws is not None:  # the local backward pass writes straight into the buffer
            self.ws.nabla_W = self.nabla_W
            self.ws.nabla_b = self.nabla_b

    def _view(self, offset: int, shape: tuple[int, ...], order: str = "C") -> np.ndarray:
        return self.buffer[offset : offset + int(np.prod(shape))].reshape(shape, order=order)

    @property
    def bytes_per_step(self) -> int:
        """Bytes each rank contributes to the Allreduce per step."""
        return self.buffer.nbytes

    def __call__(self, ws: Workspace, r: float) -> float:
        m = ws.m
        lo, hi = share(m, self.size, self.rank)
        if self.A_L is not None:
            self.A_L[:m].fill(0)
        if hi > lo:
            assert self.ws is not None  # share(m) ≤ share(largest m)
            mine = self.ws.rows(hi - lo)
            np.copyto(mine.inputs, ws.inputs[lo:hi])
            np.copyto(mine.targets, ws.targets[lo:hi])
            self.loss[0] = self.net.backprop_into(mine, 1.0)  # (10), (14) with r = 1: sums
            if self.A_L is not None:
                np.copyto(self.A_L[lo:hi], mine.A[-1])
        else:  # fewer rows than ranks: this rank adds nothing
            self.buffer[: self.n_grad + 1].fill(0)
        self.comm.Allreduce(self._in_place, self.buffer, op=self._sum)
        for nabla_W, total in zip(ws.nabla_W, self.nabla_W, strict=True):
            np.multiply(total, r, out=nabla_W)  # r Σ_ranks Σ_rows δ aᵀ
        for nabla_b, total in zip(ws.nabla_b, self.nabla_b, strict=True):
            if nabla_b is not None:
                np.multiply(total, r, out=nabla_b)
        if self.A_L is not None:
            np.copyto(ws.A[-1], self.A_L[:m])
        return r * float(self.loss[0])


class _OnRoot(training.Callback):
    """Runs the user's callbacks on rank 0 only; their stop requests are broadcast."""

    def __init__(self, callbacks: Sequence[training.Callback], comm: Any) -> None:
        self.callbacks, self.comm = list(callbacks), comm
        self.root = comm.Get_rank() == ROOT
        self._flag = np.zeros(1, dtype=np.uint8)

    def _agree(self, stop: bool) -> bool:
        self._flag[0] = stop
        self.comm.Bcast(self._flag, root=ROOT)
        return bool(self._flag[0])

    def on_train_begin(self, net: Network, epochs: int, n_batches: int) -> None:
        for cb in self.callbacks if self.root else ():
            cb.on_train_begin(net, epochs, n_batches)

    def on_epoch_begin(self, epoch: int) -> None:
        for cb in self.callbacks if self.root else ():
            cb.on_epoch_begin(epoch)

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> bool:
        stop = False
        for cb in self.callbacks if self.root else ():
            stop = bool(cb.on_batch_end(epoch, batch, loss)) or stop
        return self._agree(stop)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        stop = False
        for cb in self.callbacks if self.root else ():
            stop = bool(cb.on_epoch_end(epoch, logs)) or stop
        return self._agree(stop)

    def on_train_end(self, history: training.History) -> None:
        for cb in self.callbacks if self.root else ():
            cb.on_train_end(history)


def fit(
    net: Network,
    X: Any,
    y: Any,
    *,
    comm: Any = None,
    batch_size: int | None = 32,
    callbacks: Sequence[training.Callback] = (),
    verbose: int = 1,
    **fit_kwargs: Any,
) -> training.History:
    """:func:`deltaprop.training.fit` across the processes of ``comm`` (``MPI.COMM_WORLD``).

    Call it on every rank with the same data, the same network seed and the same arguments
    (under ``mpirun -n N python script.py``). The result equals single-process training with
    the same global ``batch_size`` up to the order of floating-point additions; every rank
    ends with bitwise identical parameters and the same ``History``.

    Parameters
    ----------
    net : Network
        Built with the same sizes and seed on every rank; rank 0's parameters are broadcast.
    X, y : the full training data, identical on every rank
    comm : mpi4py communicator, default ``MPI.COMM_WORLD``
    batch_size : int or None
        The *global* mini-batch size m; each rank computes ⌊m/N⌋ or ⌈m/N⌉ of its rows.
    callbacks : run on rank 0 only (checkpoints, logging); a stop request from them is
        broadcast to every rank, one one-byte ``Bcast`` per batch and per epoch.
    verbose : progress is reported by rank 0 only.
    **fit_kwargs : everything else :func:`deltaprop.training.fit` takes.

    Raises
    ------
    MPIUnavailable
        mpi4py is not installed.
    DistributedMismatch
        The ranks' data sizes, network sizes or generator states differ.

    Notes
    -----
    Equation (10)/(14) summed over ranks: ∂C/∂W^l = r Σ_ranks (Δ_k^l)ᵀ A_k^{l−1}, with
    r = 1/m for ``reduction="mean"`` (m the global batch), 1 for ``"sum"``.
    """
    comm = comm if comm is not None else world()
    with abort_on_error(comm):
        if net.has_batch_norm or net.has_dropout:
            # The exchanged buffer holds ∇W and ∇b only, each rank's batch statistics are its
            # own, and masks drawn on every rank would advance the generators apart.
            raise ConfigError("distributed training does not support batch normalization or "
                              "dropout yet; train them on one process")
        n = net.check_X(X).shape[0]
        check_same_start(net, n, comm)
        broadcast_parameters(net, comm)
        m = n if batch_size is None else min(int(batch_size), n)
        # validation_split holds samples out first: the largest batch is then at most m.
        backprop = AllreduceBackprop(net, max(m, 1), comm)
        root = comm.Get_rank() == ROOT
        wrapped = [_OnRoot(callbacks, comm)] if callbacks else []
        return training.fit(
            net, X, y, batch_size=batch_size, callbacks=wrapped,
            verbose=verbose if root else 0, backprop=backprop, **fit_kwargs,
        )
