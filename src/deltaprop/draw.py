"""A picture of a network (matplotlib's object API): neurons by bias, connections by weight.

Neurons are circles, one column per layer (inputs first); a neuron's fill is its bias b_k
on a diverging colour map (red < 0 < blue; grey where the layer has no bias, or where the
bias is a bias unit, drawn as a square "1" under the layer it feeds). A connection's width
grows with |w_kj| and its colour shows the sign. Colours are scaled by the network's largest
|w| and |b|. For a network with 2 inputs and a 2-D data set, a second panel shows the
decision regions it learned, with the data points, like the teaching playgrounds.

The figure's size follows the network (wider with more layers, taller with wider layers),
so two different models give different images. Layers wider than :data:`MAX_DRAWN` show
their first and last neurons around an ellipsis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deltaprop import figures
from deltaprop.errors import ConfigError
from deltaprop.network import Network

MAX_DRAWN = 16
FORMATS = figures.FORMATS


def _shown(n: int) -> list[int | None]:
    """Indices of the neurons drawn for a layer of n (None marks the ellipsis)."""
    if n <= MAX_DRAWN:
        return list(range(n))
    half = MAX_DRAWN // 2
    return [*range(half), None, *range(n - half + 1, n)]


def _network_panel(ax: Any, net: Network) -> None:
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm

    cmap = matplotlib.colormaps["RdBu"]
    w_max = max(float(np.abs(layer.W).max(initial=0.0)) for layer in net.layers) or 1.0
    biases = [layer.b for layer in net.layers if layer.b is not None]
    biases += [layer.W[:, -1] for layer in net.layers if layer.has_unit]
    b_max = max((float(np.abs(b).max(initial=0.0)) for b in biases), default=0.0) or 1.0
    w_norm = TwoSlopeNorm(0.0, -w_max, w_max)
    b_norm = TwoSlopeNorm(0.0, -b_max, b_max)

    columns = [_shown(n) for n in net.sizes]
    height = max(len(c) for c in columns)

    def y_of(col: list[int | None], pos: int) -> float:
        return (height - 1) / 2 - (pos - (len(col) - 1) / 2)

    for i, layer in enumerate(net.layers):
        src, dst = columns[i], columns[i + 1]
        for q, k in enumerate(dst):
            if k is None:
                continue
            for p, j in enumerate(src):
                if j is None:
                    continue
                w = float(layer.W[k, j])
                ax.plot([i, i + 1], [y_of(src, p), y_of(dst, q)], color=cmap(w_norm(w)),
                        lw=0.3 + 3.5 * abs(w) / w_max, zorder=1, solid_capstyle="round")
            if layer.has_unit:  # the bias unit's connection: its weight is W's last column
                w = float(layer.W[k, -1])
                ax.plot([i, i + 1], [-1.2, y_of(dst, q)], color=cmap(w_norm(w)),
                        lw=0.3 + 3.5 * abs(w) / w_max, ls=":", zorder=1)
        if layer.has_unit:
            ax.scatter([i], [-1.2], s=320, marker="s", c="white", edgecolors="black", zorder=2)
            ax.text(i, -1.2, "1", ha="center", va="center", fontsize=8, zorder=3)

    for col_index, col in enumerate(columns):
        layer = net.layers[col_index - 1] if col_index else None
        for pos, k in enumerate(col):
            y = y_of(col, pos)
            if k is None:
                ax.text(col_index, y, "⋮", ha="center", va="center", fontsize=14)
                continue
            if layer is not None and layer.b is not None:
                color = cmap(b_norm(float(layer.b[k])))
            elif layer is None:
                color = "white"  # an input: no bias
            else:
                color = "0.8"
            ax.scatter([col_index], [y], s=320, c=[color], edgecolors="black", zorder=2)
    labels = ["inputs"] + [f"l={i + 1}\n{la.activation.name}\nbias {la.bias}"
                           for i, la in enumerate(net.layers)]
    for col_index, text in enumerate(labels):
        ax.text(col_index, height - 0.3, text, ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_ylim(-1.8, height + 0.9)
    ax.axis("off")
    sm_w = ScalarMappable(norm=w_norm, cmap=cmap)
    sm_b = ScalarMappable(norm=b_norm, cmap=cmap)
    # One slot right of the panel holds both colour bars with their ticks and labels:
    # weights above, biases below, the gap between them wider than a tick label. The slot
    # is carved out of the panel, so nothing reaches past the panel's own area into the
    # picture's edge or the decision-region panel (two bars made by colorbar(ax=ax) were
    # drawn on top of each other, their labels running into the next panel).
    from matplotlib.colorbar import make_axes

    fig = ax.figure
    panel_in = ax.get_position().width * fig.get_figwidth()
    slot_in, bar_in = 0.95, 0.15  # the slot (bar, ticks, label) and the bar, in inches
    slot, _ = make_axes(ax, fraction=min(0.4, slot_in / panel_in), pad=0.01)
    slot.set_box_aspect(None)  # the whole slot, not a colour bar's 20:1 box
    slot.axis("off")
    for mappable, label, bottom in ((sm_w, "weight w", 0.58), (sm_b, "bias b", 0.0)):
        bar = slot.inset_axes((0.0, bottom, bar_in / slot_in, 0.42))
        fig.colorbar(mappable, cax=bar, label=label)


def _regions_panel(ax: Any, model: Any, X: np.ndarray, y: np.ndarray) -> None:
    """Decision regions over the data's bounding box (raw feature units), with the points.

    ``y`` holds class indices (or targets for a regressor); the grid goes through the
    model's own preprocessing.
    """
    net = model.network
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * (hi - lo + 1e-12)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 200)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 200)
    G0, G1 = np.meshgrid(g0, g1)
    grid = np.column_stack([G0.ravel(), G1.ravel()])
    P = net.predict_proba(model.transform(grid))
    if net.is_classifier:
        index = net.index_of(P).reshape(G0.shape)
        n = max(net.n_classes, 2)
        ax.contourf(G0, G1, index, levels=np.arange(n + 1) - 0.5, cmap="coolwarm", alpha=0.35)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", vmin=0, vmax=n - 1, s=10,
                   edgecolors="black", linewidths=0.3)
    else:
        ax.contourf(G0, G1, P[:, 0].reshape(G0.shape), levels=20, cmap="viridis")
        ax.scatter(X[:, 0], X[:, 1], c="black", s=6)
    ax.set_title("decision regions")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def draw(
    model: Any,
    path: str | Path,
    *,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Write a picture of ``model`` to ``path`` (``.png``, ``.svg`` or ``.pdf``).

    Parameters
    ----------
    model : Model or Network
        A Network is drawn as a model without preprocessing.
    path : the output file; its suffix picks the format.
    data : (X, y), optional
        Raw 2-D samples and their class indices (or targets); with a 2-input network, adds
        the decision regions, computed through the model's preprocessing.

    Returns
    -------
    dict
        ``path``, ``format``, ``size`` (width, height in pixels at 100 dpi), ``regions``.

    Raises
    ------
    ValueError
        Unknown format, or data that is not 2-D while a region panel was asked for.
    """
    from deltaprop.io import as_model

    model = as_model(model)
    net = model.network
    path = Path(path)
    fmt = figures.picture_format(path)
    regions = data is not None
    if regions and (net.n_inputs != 2 or np.asarray(data[0]).shape[1] != 2):
        raise ConfigError(
            f"decision regions need 2-D data and a 2-input network; the network takes "
            f"{net.n_inputs} inputs"
        )
    height = max(len(_shown(n)) for n in net.sizes)
    width_in = 1.2 + 1.6 * len(net.sizes)
    height_in = 1.6 + 0.55 * height
    if regions:
        fig = figures.figure((width_in + max(height_in, 4.0), max(height_in, 4.0)))
        ax_net, ax_reg = fig.subplots(
            1, 2, gridspec_kw={"width_ratios": [width_in, max(height_in, 4.0)]}
        )
        _regions_panel(ax_reg, model, np.asarray(data[0]), np.asarray(data[1]))
    else:
        fig = figures.figure((width_in, height_in))
        ax_net = fig.subplots()
    _network_panel(ax_net, net)
    size = tuple(round(float(v)) for v in fig.get_size_inches() * 100)
    figures.save(fig, path)
    return {"path": str(path), "format": fmt, "size": size, "regions": regions}
