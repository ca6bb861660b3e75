"""Shared fixtures: a seeded ``rng`` per test, tiny networks and random problems.

Every random draw in the tests comes from the ``rng`` fixture, a ``numpy.random.Generator``
seeded from the test's own name (parameters included): each parametrised case gets its own
data, and a failure reproduces exactly when that one case is rerun.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.activations import ACTIVATIONS
from deltaprop.layers import BIAS_MODES

# The playground's browser fixtures (a served playground, a Chromium page, where screenshots
# go), for the modules that drive the page; nothing starts until a test asks for one.
from playground_support import browser, page, playground, shots  # noqa: F401

# Activations defined piecewise at z = 0. For relu and leaky_relu σ' jumps there: a finite
# difference that straddles the kink measures neither side's slope. For elu (α = 1) σ' is
# continuous but σ'' jumps from 1 to 0, which makes a straddling central difference O(ε)
# instead of O(ε²) accurate (seen: 1e-6 relative error for a z of 4e-6). Problems are
# redrawn until every such z is ≥ KINK_MARGIN from 0 — far beyond the ≤ 1e-5 · |a| by which
# a finite-difference step moves z.
PIECEWISE = ("relu", "leaky_relu", "elu")
KINK_MARGIN = 1e-3

HIDDEN = [name for name, a in ACTIVATIONS.items() if not a.output_only]


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A Generator seeded by the test's name, e.g. ``test_gradient[relu-sigmoid-...]``."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


@pytest.fixture
def tiny_net() -> dp.Network:
    """STYLE.md §7's tiny network: sizes [3, 4, 2], tanh hidden, softmax + CE, float64."""
    return dp.Network([3, 4, 2], activation="tanh", dtype="float64", seed=0)


def pre_activations(net: dp.Network, X: np.ndarray) -> list[np.ndarray]:
    """Every layer's Z for the batch X, in float64, computed here without the workspace."""
    A = np.asarray(X, dtype=np.float64)
    out = []
    for layer in net.layers:
        W = layer.W.astype(np.float64)
        Z = A @ W[:, : layer.n_in].T
        if layer.has_unit:
            Z += W[:, -1]
        elif layer.b is not None:
            Z += layer.b
        out.append(Z)
        A = layer.activation(Z)
    return out


def away_from_kinks(net: dp.Network, X: np.ndarray, margin: float = KINK_MARGIN) -> bool:
    """True if no layer with a piecewise σ has a |z| < ``margin`` on the batch X."""
    Zs = pre_activations(net, X)
    return all(
        np.abs(Z).min() >= margin
        for Z, layer in zip(Zs, net.layers, strict=True)
        if layer.activation.name in PIECEWISE
    )


def random_targets(
    rng: np.random.Generator, loss: str, m: int, n_out: int, *, labels: bool | None = None
) -> np.ndarray:
    """Targets that fit ``loss``: class indices or soft rows for CE, [0, 1] for BCE, reals."""
    if loss == "cross_entropy":
        if labels is None:
            labels = bool(rng.random() < 0.5)
        if labels:
            return rng.integers(0, n_out, size=m)
        P = rng.random((m, n_out)) + 0.1  # soft targets: rows of probabilities
        return P / P.sum(axis=1, keepdims=True)
    if loss == "binary_cross_entropy":
        return rng.random((m, n_out)) if rng.random() < 0.5 else rng.integers(0, 2, (m, n_out))
    if loss == "poisson":  # counts, zeros among them (0 log 0 = 0 in the loss)
        return rng.poisson(2.0, size=(m, n_out)).astype(np.float64)
    return rng.normal(size=(m, n_out))


def randomize_parameters(net: dp.Network, rng: np.random.Generator, scale: float = 0.5) -> None:
    """Give every bias (and bias unit column) a random value, so none is a trivial 0."""
    for layer in net.layers:
        if layer.b is not None:
            layer.b[...] = rng.normal(0.0, scale, size=layer.b.shape)
        if layer.has_unit:
            layer.W[:, -1] = rng.normal(0.0, scale, size=layer.n_out)


def make_problem(
    rng: np.random.Generator,
    *,
    hidden: str = "tanh",
    output: str = "softmax",
    loss: str = "cross_entropy",
    bias: Any = "learned",
    depth: int | tuple[int, int] = (1, 4),
    sizes: list[int] | None = None,
    m: int | None = None,
    dtype: str = "float64",
    init: str = "glorot_normal",
) -> tuple[dp.Network, np.ndarray, np.ndarray]:
    """A random (net, X, Y): depth in ``depth`` (an int or an inclusive range), widths 1–5,
    m = 3–6, kinks avoided.

    Softmax outputs get ≥ 2 neurons (with one, a ≡ 1 and every gradient is exactly 0).
    ``hidden="random"`` / ``bias="random"`` draw an activation / bias mode per layer.
    Parameters and data are redrawn until no piecewise unit sits within ``KINK_MARGIN`` of
    its kink.
    """
    lo, hi = (depth, depth) if isinstance(depth, int) else depth
    for _ in range(200):
        if sizes is None:
            L = int(rng.integers(lo, hi + 1))
            n = [int(k) for k in rng.integers(1, 6, size=L + 1)]
            if output == "softmax":
                n[-1] = max(n[-1], 2)
        else:
            n = list(sizes)
        L = len(n) - 1
        modes: Any = bias
        if bias == "random":
            modes = [str(b) for b in rng.choice(BIAS_MODES, L)]
        sigmas: Any = hidden
        if hidden == "random":
            sigmas = [str(a) for a in rng.choice(HIDDEN, L - 1)]
        net = dp.Network(
            n,
            activation=sigmas,
            output=output,
            loss=loss,
            bias=modes,
            init=init,
            dtype=dtype,
            seed=int(rng.integers(2**31)),
        )
        randomize_parameters(net, rng)
        batch = int(rng.integers(3, 7)) if m is None else m
        X = rng.normal(size=(batch, n[0]))
        Y = random_targets(rng, loss, batch, n[-1])
        if away_from_kinks(net, X):
            return net, X.astype(dtype), Y
    raise RuntimeError("no problem away from the kinks in 200 draws")  # pragma: no cover


@pytest.fixture
def problem(rng: np.random.Generator) -> Callable[..., tuple[dp.Network, np.ndarray, Any]]:
    """``problem(hidden=..., output=..., loss=..., bias=...)``: :func:`make_problem` on rng."""

    def make(**kwargs: Any) -> tuple[dp.Network, np.ndarray, Any]:
        return make_problem(rng, **kwargs)

    return make


@pytest.fixture
def targets(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """``targets(loss, m, n_out)``: :func:`random_targets` on rng."""

    def make(loss: str, m: int, n_out: int, **kwargs: Any) -> np.ndarray:
        return random_targets(rng, loss, m, n_out, **kwargs)

    return make


def torch_activations() -> dict[str, Any]:
    """PyTorch's σ for every deltaprop activation, with the parameters DESIGN.md fixes
    (PyTorch's defaults: leaky_relu slope 0.01, elu α = 1, softplus β = 1, gelu tanh form)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
        "elu": lambda z: F.elu(z, alpha=1.0),
        "softplus": lambda z: F.softplus(z, beta=1.0),
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "exp": torch.exp,
        "softmax": lambda z: torch.softmax(z, dim=1),
    }


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``deltaprop ARGV`` in-process: (exit status, stdout, stderr).

    An exception that escapes ``main`` (a bug: it would print a traceback) fails the test.
    """
    from deltaprop import cli

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), out, err


#: JSON printed by deltaprop before typed results (tests/data/json/README.md says how).
JSON_BEFORE = Path(__file__).parent / "data" / "json"


def assert_same_json(
    new: Any,
    old: Any,
    *,
    rtol: float | None,
    atol: float = 0.0,
    unchecked: Collection[str] = (),
    path: str = "$",
) -> None:
    """``new`` (parsed JSON) has ``old``'s format exactly, and its numbers.

    Format: the same keys in the same order at every level, lists of the same lengths, the
    same JSON type at every leaf (null where null, an integer where an integer), equal
    strings, booleans and integers. Floats agree within ``rtol``/``atol`` — or are only
    checked to be floats when ``rtol`` is None. Values under a key in ``unchecked`` (a
    duration, a path) are checked for their type only.
    """
    where = f"{path}: {new!r:.60} where it was {old!r:.60}"
    assert type(new) is type(old), where
    if isinstance(old, dict):
        assert list(new) == list(old), f"{path}: keys {list(new)} where they were {list(old)}"
        for key in old:
            assert_same_json(new[key], old[key], rtol=None if key in unchecked else rtol,
                             atol=atol, unchecked=unchecked, path=f"{path}.{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_same_json(a, b, rtol=rtol, atol=atol, unchecked=unchecked,
                             path=f"{path}[{i}]")
    elif isinstance(old, float):
        assert rtol is None or math.isclose(new, old, rel_tol=rtol, abs_tol=atol), where
    elif path.rsplit(".", 1)[-1] not in unchecked:
        assert new == old, where


class TorchTwin:
    """A network as torch modules — Linear, BatchNorm1d where the layer has batch norm, σ —
    with the same parameters (and running statistics), in the network's dtype.

    An independent statement of eq. (2) with batch norm and dropout, for the oracle tests:
    ``nn.Linear`` (a bias unit's column is its bias), ``nn.BatchNorm1d`` (torch's own
    batch statistics, backward and running estimates), torch's σ, dropout as the product
    with a given 0/1 mask divided by 1 − p, and the per-sample losses written with torch's
    stable primitives. The modules' parameters are loaded by the names of deltaprop's model
    files (``io.tensors_of``), so the naming is checked on the way.
    """

    def __init__(self, net: dp.Network) -> None:
        torch = pytest.importorskip("torch")
        from deltaprop import io

        self.torch, self.net = torch, net
        self.dtype = torch.float64 if net.dtype == np.float64 else torch.float32
        self.sigma = torch_activations()
        modules: list[Any] = []
        self.linears, self.norms = [], []
        for layer in net.layers:
            linear = torch.nn.Linear(layer.n_in, layer.n_out,
                                     bias=layer.b is not None or layer.has_unit)
            norm = torch.nn.BatchNorm1d(layer.n_out) if layer.norm is not None else None
            self.linears.append(linear)
            self.norms.append(norm)
            modules += [linear, *([norm] if norm is not None else []), torch.nn.Identity()]
            if layer.dropout > 0:
                modules.append(torch.nn.Dropout(layer.dropout))
        self.sequential = torch.nn.Sequential(*modules).to(self.dtype)
        state = {k: torch.tensor(v) for k, v in io.tensors_of(net).items()}
        self.sequential.load_state_dict(state, strict=True)

    def forward(self, X: np.ndarray, masks: list[Any] | None = None) -> tuple[Any, Any]:
        """(Z^L, A^L); batch norm uses batch statistics in train mode, running ones in eval."""
        torch = self.torch
        A = torch.tensor(np.asarray(X), dtype=self.dtype)
        Z = A
        for i, layer in enumerate(self.net.layers):
            Z = self.linears[i](A)
            pre = Z if self.norms[i] is None else self.norms[i](Z)
            A = self.sigma[layer.activation.name](pre)
            if masks is not None and masks[i] is not None:
                A = A * torch.tensor(masks[i], dtype=self.dtype) / (1 - layer.dropout)
        return Z, A

    def loss(self, X: np.ndarray, Y: Any, reduction: str, masks: list[Any] | None = None,
             weights: np.ndarray | None = None) -> Any:
        """The batch loss (a torch scalar with a graph), as ``Network.backprop`` reports it:
        with sample ``weights`` s, Σ_x s_x C_x, divided by Σ_x s_x for the mean."""
        torch, net = self.torch, self.net
        F = torch.nn.functional
        Z, A = self.forward(X, masks)
        Y = np.asarray(Y)
        if net.loss.name == "cross_entropy" and Y.ndim == 1:
            T = F.one_hot(torch.tensor(Y, dtype=torch.int64), net.n_outputs).to(self.dtype)
        else:
            T = torch.tensor(Y.reshape(len(Y), -1), dtype=self.dtype)
        if net.loss.name == "cross_entropy":
            per_sample = -(T * F.log_softmax(Z, dim=1)).sum(dim=1)
        elif net.loss.name == "binary_cross_entropy":
            per_sample = F.binary_cross_entropy_with_logits(Z, T, reduction="none").sum(dim=1)
        else:  # ½ ‖a − y‖² per sample
            per_sample = 0.5 * ((A - T) ** 2).sum(dim=1)
        if weights is not None:
            s = torch.tensor(weights, dtype=self.dtype)
            total = (s * per_sample).sum()
            return total / s.sum() if reduction == "mean" else total
        return per_sample.mean() if reduction == "mean" else per_sample.sum()

    def gradients(self) -> list[dict[str, np.ndarray | None]]:
        """Per layer, autograd's ∂C/∂W (a bias unit's column last), ∂C/∂b, ∂C/∂γ, ∂C/∂β."""
        out = []
        for layer, linear, norm in zip(self.net.layers, self.linears, self.norms, strict=True):
            dW = linear.weight.grad.numpy()
            db = None if linear.bias is None else linear.bias.grad.numpy()
            if layer.has_unit:
                dW, db = np.hstack([dW, db[:, None]]), None
            out.append({"W": dW, "b": db,
                        "gamma": None if norm is None else norm.weight.grad.numpy(),
                        "beta": None if norm is None else norm.bias.grad.numpy()})
        return out

    def zero_grad(self) -> None:
        self.sequential.zero_grad(set_to_none=True)

    def trainable(self) -> list[Any]:
        """The parameters an optimizer moves: all but frozen biases (which deltaprop keeps)."""
        frozen = {id(linear.bias) for layer, linear in zip(self.net.layers, self.linears,
                                                           strict=True)
                  if layer.bias == "frozen"}
        return [p for p in self.sequential.parameters() if id(p) not in frozen]
