"""Heatmaps over the input plane and the binary frames that carry them to the page.

The network's forward pass, eqs. (1)–(2) through each layer's own ``Dense.forward``, runs
on a grid of ``FINE × FINE`` points covering the data's square. Every neuron's activation a
(and every input feature) is sent at ``COARSE × COARSE`` (every third point, the middle of
each 3 × 3 block); the output — class probabilities and the predicted class, or the
regression value — at the full grid.

A frame is one WebSocket binary message::

    uint32 (little-endian) n | n bytes of UTF-8 JSON | the maps, one after another

The JSON is the state (:meth:`Snapshot.describe`) plus ``grid`` (the square and the sizes)
and ``maps``: for each map its ``key``, ``size`` (side in points), byte ``offset`` and the
range ``lo``, ``hi`` of its values. A map is ``size²`` bytes, row 0 at the top (largest x2),
column 0 at the left (smallest x1); byte q stands for lo + q / 255 · (hi − lo). Keys:
``feature/j`` (input feature j), ``a/i/k`` (activation of neuron k of layer i, 0-based),
``z/i/k`` (its weighted input, only when the view shows z), ``p/c`` (probability of class
c), ``class`` (the predicted class index, bytes as is, not scaled), ``y`` (the regression
output).

When the view needs backprop's numbers (step mode, the δ and gradient views), the JSON also
holds ``backprop``: :func:`backprop.view` of the inspected rows, with at most
:data:`FRAME_ROWS` samples' rows (sums and means over all of them). It costs more than the
heatmaps (most of it JSON), so while training plays a :class:`Builder` recomputes it at most
every :data:`VIEW_SECONDS` and sends the last one between; its ``step`` says which step it
shows. Paused — step mode — every frame has its own.
"""

from __future__ import annotations

import functools
import json
import struct
import time
import warnings
from typing import Any

import numpy as np

from deltaprop.network import Network
from deltaprop.playground import backprop, features, selection
from deltaprop.playground.session import Snapshot

FINE = 96  # output heatmap: points per side
STRIDE = 3
COARSE = FINE // STRIDE  # neuron heatmaps: points per side
FRAME_ROWS = 16  # per-sample rows of the backprop view a frame carries
VIEW_SECONDS = 0.2  # while playing, the backprop view is recomputed at most this often


def grid(domain: tuple[float, float, float, float], size: int = FINE) -> np.ndarray:
    """(size², 2) points at the centres of a size × size grid over the square, row-major
    from the top-left corner (x1 smallest, x2 largest)."""
    x1_lo, x1_hi, x2_lo, x2_hi = domain
    t = (np.arange(size) + 0.5) / size
    x1 = x1_lo + t * (x1_hi - x1_lo)
    x2 = x2_hi - t * (x2_hi - x2_lo)
    X1, X2 = np.meshgrid(x1, x2)
    return np.column_stack([X1.ravel(), X2.ravel()])


def layer_outputs(net: Network, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(Z^l, A^l) of every layer for the batch X: eqs. (1)–(2), layer by layer."""
    A = net.check_X(X)
    out = []
    for layer in net.layers:
        if layer.has_unit:  # the bias unit's constant activation 1 as a last column
            A = np.hstack([A, np.ones((A.shape[0], 1), dtype=A.dtype)])
        Z = np.empty((A.shape[0], layer.n_out), dtype=net.dtype)
        A_next = np.empty_like(Z)
        layer.forward(A, Z, A_next)
        out.append((Z, A_next))
        A = A_next
    return out


@functools.lru_cache(maxsize=4)
def _grid_inputs(domain: tuple[float, ...], names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The grid's feature matrix and the mask of its coarse points (the same every frame)."""
    inputs = features.transform(grid(domain), names)  # type: ignore[arg-type]
    coarse = np.zeros((FINE, FINE), dtype=bool)
    coarse[STRIDE // 2 :: STRIDE, STRIDE // 2 :: STRIDE] = True
    inputs.setflags(write=False)
    return inputs, coarse.ravel()


class MapWriter:
    """Collects maps as bytes and their descriptions for a frame."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.chunks: list[bytes] = []
        self.offset = 0

    def add(self, keys: list[str], values: np.ndarray, size: int, raw: bool = False) -> None:
        """Maps from the columns of ``values`` (size² rows), each quantised to bytes over
        its own range (``raw``: the values are bytes already)."""
        v = np.asarray(values, dtype=np.float64).reshape(size * size, len(keys))
        if raw:
            lo, hi, q = np.zeros(len(keys)), np.full(len(keys), 255.0), v
        else:
            lo, hi = v.min(axis=0), v.max(axis=0)
            if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # NaN or inf somewhere
                v = np.where(np.isfinite(v), v, np.nan)
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN map
                    lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
                lo, hi = np.nan_to_num(lo), np.nan_to_num(hi)
                v = np.where(np.isnan(v), lo, v)
            span = np.where(hi > lo, hi - lo, 1.0)
            q = np.rint((v - lo) * (255 / span))
        data = np.ascontiguousarray(q.T, dtype=np.uint8)  # one map after another
        for j, key in enumerate(keys):
            self.entries.append({"key": key, "size": size, "offset": self.offset + j * size * size,
                                 "lo": float(lo[j]), "hi": float(hi[j])})
        self.chunks.append(data.tobytes())
        self.offset += data.size


def heatmaps(snap: Snapshot) -> MapWriter:
    """Every map of a frame for the snapshot's network and data."""
    maps = MapWriter()
    net, config = snap.net, snap.config
    inputs, coarse = _grid_inputs(snap.data.domain, tuple(config["features"]))
    maps.add([f"feature/{j}" for j in range(inputs.shape[1])], inputs[coarse], COARSE)
    with np.errstate(over="ignore", invalid="ignore"):
        outputs = layer_outputs(net, inputs)
    for i, (Z, A) in enumerate(outputs):
        maps.add([f"a/{i}/{k}" for k in range(A.shape[1])], A[coarse], COARSE)
        if config["node_view"] == "z":
            maps.add([f"z/{i}/{k}" for k in range(Z.shape[1])], Z[coarse], COARSE)
    add_output(maps, net, outputs[-1][1], FINE)
    return maps


def add_output(maps: MapWriter, net: Network, A_L: np.ndarray, size: int) -> None:
    """The output maps of a^L on a size × size grid: ``y`` (regression), or ``p/c`` and
    ``class``."""
    if not net.is_classifier:
        maps.add(["y"], A_L, size)
        return
    proba = np.column_stack([1 - A_L[:, 0], A_L[:, 0]]) if A_L.shape[1] == 1 else A_L
    maps.add([f"p/{c}" for c in range(proba.shape[1])], proba, size)
    maps.add(["class"], net.index_of(A_L), size, raw=True)


def backprop_json(snap: Snapshot) -> str | None:
    """The frame's ``backprop`` as JSON text, or None when the view does not need it."""
    if snap.probe is None or not selection.needs_backprop(snap.config):
        return None
    return json.dumps(backprop.view(snap, snap.config["focus"], FRAME_ROWS), allow_nan=False)


def encode(snap: Snapshot, view: str | None = None) -> bytes:
    """One binary frame: the state, the grid, every heatmap, and the backprop view (``view``:
    its JSON text, computed here if None and needed)."""
    maps = heatmaps(snap)
    state = snap.describe()
    state["grid"] = {"domain": list(snap.data.domain), "fine": FINE, "coarse": COARSE}
    state["maps"] = maps.entries
    header = json.dumps(state, allow_nan=False)
    view = view if view is not None else backprop_json(snap)
    if view is not None:  # spliced in: the view is encoded once, however often it is sent
        header = f'{header[:-1]}, "backprop": {view}}}'
    data = header.encode()
    return b"".join([struct.pack("<I", len(data)), data, *maps.chunks])


class Builder:
    """A session's frame builder (``Session.frame_builder``): :func:`encode`, with the
    backprop view recomputed at most every :data:`VIEW_SECONDS` while training plays (for
    the same settings, data and run); paused, every frame gets its own."""

    def __init__(self) -> None:
        self._last: tuple[str, Any, float, str | None] | None = None  # key, run, time, view

    def __call__(self, snap: Snapshot) -> bytes:
        key = json.dumps([snap.config, snap.data_version], sort_keys=True)
        now = time.monotonic()
        last = self._last
        if (snap.playing and last is not None and last[0] == key and last[1] is snap.run
                and now - last[2] < VIEW_SECONDS):
            view = last[3]
        else:
            view = backprop_json(snap)
            self._last = (key, snap.run, now, view)
        return encode(snap, view)
