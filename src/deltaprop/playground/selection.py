"""What step mode looks at: the stages of one backprop step in seed 000's order, and the
checks of a selected neuron or weight, sample and stage against the network and the data.

One step of backprop on L layers has 3L + 1 stages (:func:`stages`):

    forward, l = 1 … L                          (2)  z^l = W^l a^{l−1} + b^l, a^l = σ(z^l)
    output error, l = L                         (9)  δ^L = ∂C/∂a^L ⊙ σ'(z^L)
    for l = L … 1:  gradients of layer l        (10) ∂C/∂w = δ a,  (14) ∂C/∂b = δ
                    error signal of layer l − 1 (8)  δ^{l−1} = (W^l)ᵀ δ^l ⊙ σ'(z^{l−1})  (l > 1)
    updates, every layer                        (11) w ← w − α ∂C/∂w,  (15) b ← b − α ∂C/∂b

The server defines them (the page draws what it is sent), so the order lives in one place.
A *focus* names a neuron ``[l, k]`` or a weight ``[l, k, j]`` in the seeds' numbering (layer
l = 1 … L, neuron k = 1 … n_l, input j = 1 … n_{l−1}, and j = n_{l−1} + 1 for a bias unit),
as the page's test ids ``data-layer``/``data-index`` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deltaprop.errors import ConfigError
from deltaprop.network import Network

SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _up(n: int) -> str:
    return str(n).translate(SUP)


def stages(L: int) -> list[dict[str, Any]]:
    """The 3L + 1 stages of one step on a network of L layers, in the seed's order.

    Each stage: ``kind`` (forward, output, gradients, backward, update), ``layer`` (the
    layer whose numbers it computes, 1 … L; None for the updates), ``equations`` (seed 000's
    numbers) and ``name`` (a line for people).
    """
    out: list[dict[str, Any]] = []

    def add(kind: str, layer: int | None, equations: Sequence[str], name: str) -> None:
        out.append({"index": len(out), "kind": kind, "layer": layer,
                    "equations": list(equations), "name": name})

    for l in range(1, L + 1):
        add("forward", l, ["(2)"],
            f"forward pass, layer {l}: z{_up(l)} = W{_up(l)} a{_up(l - 1)} + b{_up(l)}, "
            f"a{_up(l)} = σ(z{_up(l)})")
    add("output", L, ["(9)"], f"output error: δ{_up(L)} = ∂C/∂a{_up(L)} ⊙ σ'(z{_up(L)})")
    for l in range(L, 0, -1):
        add("gradients", l, ["(10)", "(14)"],
            f"gradients of layer {l}: ∂C/∂w{_up(l)} = δ{_up(l)} a{_up(l - 1)}, "
            f"∂C/∂b{_up(l)} = δ{_up(l)}")
        if l > 1:
            add("backward", l - 1, ["(8)"],
                f"error signal of layer {l - 1}: δ{_up(l - 1)} = (W{_up(l)})ᵀ δ{_up(l)} "
                f"⊙ σ'(z{_up(l - 1)})")
    add("update", None, ["(11)", "(15)"],
        "updates: w ← w − α ∂C/∂w, b ← b − α ∂C/∂b, every layer")
    return out


def stage_count(L: int) -> int:
    """3L + 1: the number of :func:`stages` of a network of L layers."""
    return 3 * L + 1


def focus_problem(focus: Sequence[int], net: Network) -> str | None:
    """Why ``focus`` names nothing in ``net`` (one line), or None if it names a neuron or
    weight that exists."""
    if not focus:
        return None
    L = len(net.layers)
    l, k = focus[0], focus[1]
    if not 1 <= l <= L:
        return f"layer {l} does not exist; the network has layers 1..{L}"
    layer = net.layers[l - 1]
    if not 1 <= k <= layer.n_out:
        return f"neuron {k} of layer {l} does not exist; layer {l} has neurons 1..{layer.n_out}"
    if len(focus) == 3:
        j, n_in = focus[2], layer.n_in
        top = n_in + 1 if layer.has_unit else n_in
        if not 1 <= j <= top:
            unit = f" ({n_in + 1}: the bias unit)" if layer.has_unit else ""
            return (f"input {j} of layer {l} does not exist; layer {l} has inputs "
                    f"1..{n_in}{unit}")
    return None


def sample_problem(sample: int, n_train: int) -> str | None:
    """Why training sample ``sample`` does not exist, or None."""
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample < n_train:
        return (f"sample {sample!r} does not exist; the training set has samples "
                f"0..{n_train - 1}")
    return None


def stage_problem(stage: int, L: int) -> str | None:
    """Why ``stage`` is not one of the 3L + 1 stages, or None."""
    if not 0 <= stage < stage_count(L):
        return f"stage {stage} does not exist; a network of {L} layers has stages " \
               f"0..{stage_count(L) - 1}"
    return None


def view_problems(config: dict[str, Any], net: Network, n_train: int) -> dict[str, str]:
    """The view settings of ``config`` that name something ``net`` or the data lacks:
    {setting: why}, for ``focus``, ``sample`` and ``stage``."""
    problems = {}
    for key, why in (("focus", focus_problem(config["focus"], net)),
                     ("sample", sample_problem(config["sample"], n_train)),
                     ("stage", stage_problem(config["stage"], len(net.layers)))):
        if why is not None:
            problems[key] = why
    return problems


def check_view(config: dict[str, Any], net: Network, n_train: int,
               changes: dict[str, Any]) -> str | None:
    """Check the selected neuron or weight, sample and stage of ``config`` against ``net``
    and the training set: one that ``changes`` names and that does not exist is refused; one
    kept from before that no longer exists (a neuron removed, fewer points) is reset in
    ``config`` and named in the returned message (None if nothing was).

    Raises
    ------
    ConfigError
        A ``focus``, ``sample`` or ``stage`` in ``changes`` that does not exist; ``config``
        is unchanged.
    """
    problems = view_problems(config, net, n_train)
    for key, why in problems.items():
        if key in changes:
            raise ConfigError(why)
    for key in problems:  # kept from before: cleared, not refused
        config[key] = [] if key == "focus" else 0
    return "; ".join(f"{why}: the selection was cleared" for why in problems.values()) or None


def needs_backprop(config: dict[str, Any]) -> bool:
    """Whether the page's view needs the backprop numbers (step mode, δ and gradient views)."""
    return bool(config["step_mode"] or config["node_view"] in ("delta", "db")
                or config["edge_view"] in ("dw", "update"))
