"""ONNX export: a Model as a standard ONNX graph on raw rows (optional extra ``deltaprop[onnx]``).

The graph is the whole :class:`~deltaprop.model.Model`, so it takes the same raw rows as
``Model.predict`` and answers the same:

1. the input scaling, x ↦ (x − offset)/scale as ``Sub`` and ``Div`` (or ``Div`` by the
   divisor), the operations ``Scaler.transform`` performs, in the network's dtype;
2. the network, eq. (2) layer by layer, Z^l = A^{l−1}(W^l)ᵀ + b^l, A^l = σ(Z^l);
3. for a regressor the target inverse, a^L ↦ a^L·s + μ (``Mul``, ``Add``).

- a layer with a bias (``learned``, ``frozen``) is ``Gemm(A, W, b, transB=1)``, W stored in
  the book's (n_out, n_in) shape;
- a bias unit (``unit``) is the same Gemm with the unit's column of W as b, since
  W [a; 1] = W_{:, :n_in} a + W_{:, n_in} (layers.py);
- ``none`` is ``MatMul(A, Wᵀ)``: no bias input at all;
- batch norm is ``BatchNormalization`` (inference mode: γ, β and the running mean and
  variance, ε = 1e-5) between the Gemm and σ; dropout, which inference never applies, is
  left out;
- σ is the ONNX operator of the same name: Relu, Sigmoid, Tanh, LeakyRelu (alpha: the
  activation object's ``slope``, 0.01 by default), Elu (alpha: its ``alpha``, 1), Softplus,
  Softmax (axis −1), Identity; GELU's tanh approximation is the ``Gelu`` operator with
  ``approximate="tanh"`` from opset 20, and the explicit formula
  ½z(1 + tanh(√(2/π)(z + 0.044715 z³))) in Mul/Add/Tanh nodes below that.

For float64 networks LeakyRelu, Elu, Softplus and Gelu are written as their formulas in
elementary operators (Max, Min, Exp, Log, Where, …), which is what ``activations.py``
computes: onnxruntime 1.31's CPU provider implements the first three for float32 only
("Could not find an implementation for LeakyRelu(16)" on a double graph), and its double
Gelu loses precision (relative errors of 2e-8, a float32 detour; tests/test_onnx.py).

The input is ``"input"`` of shape (batch, n_0), raw features, with a symbolic batch
dimension. The output ``"output"`` is ``Model.outputs``: class (or label) probabilities A^L for
a classifier, targets in their own units for a regressor. A classifier has a second output
``"label"``: the predicted class label (``ArgMax`` of A^L, or a^L > ½ for one sigmoid output,
then ``Gather`` from the class labels, strings or numbers), or for multilabel the (batch, k)
0/1 matrix as int64 — ``Model.predict``. The opset is explicit (default 17) and the IR version
is the lowest that carries it, so current onnxruntime releases load the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from deltaprop.errors import ConfigError, DeltapropError

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over the last axis alone (axis=-1 semantics) needs opset 13
GELU_OPSET = 20  # first opset with Gelu(approximate="tanh")


class OnnxUnavailableError(DeltapropError, ImportError):
    """The optional ``onnx`` package is not installed."""


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise OnnxUnavailableError(
            "ONNX export needs the onnx package: install deltaprop[onnx] (pip install onnx)"
        ) from None
    return onnx


class _Graph:
    """Nodes and initializers being built, with unique names."""

    def __init__(self, onnx: Any, dtype: np.dtype, opset: int) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.dtype = dtype
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` in the graph's dtype (or ``dtype``)."""
        name = self.name(stem)
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype or self.dtype))
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    # ---------------------------------------------------------------- the model's ends
    def input_scaling(self, scaler: Any, x: str) -> str:
        """(x − offset)/scale, or x/divisor: what ``Scaler.transform`` computes."""
        if scaler.kind == "divide":
            return self.node("Div", [x, self.const("divisor", scaler.divisor)])
        if scaler.kind == "none":
            return x
        centred = self.node("Sub", [x, self.const("offset", scaler.offset)])
        return self.node("Div", [centred, self.const("scale", scaler.scale)])

    def target_inverse(self, scaler: Any, a: str) -> str:
        """a·s + μ: a regressor's outputs back in the targets' units."""
        if scaler is None or scaler.kind == "none":
            return a
        if scaler.kind == "divide":
            return self.node("Mul", [a, self.const("divisor", scaler.divisor)])
        scaled = self.node("Mul", [a, self.const("target_scale", scaler.scale)])
        return self.node("Add", [scaled, self.const("target_offset", scaler.offset)])

    def labels(self, model: Any, a: str) -> str:
        """The predicted labels: ``Model.predict`` as nodes."""
        half = self.const("half", 0.5)
        if model.task == "multilabel":  # each label: a_k > ½, as int64 0/1
            return self.node("Cast", [self.node("Greater", [a, half])], to=7)
        if model.n_outputs == 1:  # one sigmoid output: class 1 where a > ½
            above = self.node("Greater", [a, half])
            index = self.node("Cast", [self.node("Squeeze", [above, self.const(
                "axis", [1], np.int64)])], to=7)
        else:
            index = self.node("ArgMax", [a], axis=1, keepdims=0)
        classes = model.classes
        if classes is None:
            return index
        values = classes.astype(object) if classes.dtype.kind in "US" else classes
        return self.node("Gather", [self.const("classes", values, values.dtype), index], axis=0)

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out

    # ---------------------------------------------------------------- activations
    def activation(self, sigma: Any, z: str) -> str:
        """σ(z) as nodes, with σ's own parameters (slope, α); returns the output's name."""
        name = sigma.name
        native = self.dtype == np.float32  # onnxruntime: float32-only kernels (docstring)
        if name == "identity":
            return z
        if name == "relu":
            return self.node("Relu", [z])
        if name == "sigmoid":
            return self.node("Sigmoid", [z])
        if name == "tanh":
            return self.node("Tanh", [z])
        if name == "exp":
            return self.node("Exp", [z])
        if name == "softmax":
            return self.node("Softmax", [z], axis=-1)
        if name == "leaky_relu":
            if native:
                return self.node("LeakyRelu", [z], alpha=sigma.slope)
            scaled = self.node("Mul", [z, self.const("slope", sigma.slope)])
            return self.node("Max", [z, scaled])  # max(z, slope·z), as activations.py
        if name == "elu":
            if native:
                return self.node("Elu", [z], alpha=sigma.alpha)
            negative = self.node("Min", [z, self.const("zero", 0.0)])
            expm1 = self.node("Sub", [self.node("Exp", [negative]), self.const("one", 1.0)])
            scaled = self.node("Mul", [expm1, self.const("alpha", sigma.alpha)])
            positive = self.node("Greater", [z, self.const("zero", 0.0)])
            return self.node("Where", [positive, z, scaled])  # z > 0 ? z : α(e^z − 1)
        if name == "softplus":
            if native:
                return self.node("Softplus", [z])
            # max(z, 0) + log(1 + e^{−|z|}): the overflow-free form of activations.py
            tail = self.node("Exp", [self.node("Neg", [self.node("Abs", [z])])])
            log1p = self.node("Log", [self.node("Add", [tail, self.const("one", 1.0)])])
            return self.node("Add", [self.node("Relu", [z]), log1p])
        if name == "gelu":
            if native and self.opset >= GELU_OPSET:
                return self.node("Gelu", [z], approximate="tanh")
            # ½ z (1 + tanh(√(2/π) (z + 0.044715 z³))), PyTorch's approximate="tanh"
            z2 = self.node("Mul", [z, z])
            inner = self.node("Add", [self.node("Mul", [z2, self.const("k", 0.044715)]),
                                      self.const("one", 1.0)])
            u = self.node("Mul", [self.node("Mul", [inner, z]),
                                  self.const("c", math.sqrt(2.0 / math.pi))])
            t1 = self.node("Add", [self.node("Tanh", [u]), self.const("one", 1.0)])
            return self.node("Mul", [self.node("Mul", [t1, z]), self.const("half", 0.5)])
        raise ValueError(f"no ONNX mapping for activation {name!r}")


def to_model(model: Any, *, opset: int = DEFAULT_OPSET) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (see the module docstring for the mapping).

    Parameters
    ----------
    model : Model or Network
        A Network is exported as a model without preprocessing.
    opset : int
        ONNX opset of the default domain, 13 or later; 20+ writes GELU as ``Gelu``.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model(full_check=True)``.
    """
    onnx = _onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ConfigError(f"`opset` must be an integer >= {MIN_OPSET}; got {opset!r}")
    if opset > onnx.defs.onnx_opset_version():
        raise ConfigError(
            f"`opset` {opset} is newer than this onnx package supports "
            f"({onnx.defs.onnx_opset_version()})"
        )
    from deltaprop.io import as_model

    model = as_model(model)
    net = model.network
    dtype = np.dtype(net.dtype)
    g = _Graph(onnx, dtype, opset)
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    A = g.input_scaling(model.scaler, "input")
    for i, layer in enumerate(net.layers):
        if layer.has_unit:
            bias: np.ndarray | None = layer.W[:, -1]  # the bias unit's weights are b
        else:
            bias = layer.b
        if bias is None:  # "none": z = A Wᵀ, no bias input
            Z = g.node("MatMul", [A, g.const(f"layers.{i}.W_T", layer.W_in.T)])
        else:
            Z = g.node(
                "Gemm",
                [A, g.const(f"layers.{i}.W", layer.W_in), g.const(f"layers.{i}.b", bias)],
                transB=1,
            )
        if layer.norm is not None:  # inference: the running statistics; dropout is gone
            norm = layer.norm
            Z = g.node("BatchNormalization", [
                Z, g.const(f"layers.{i}.gamma", norm.gamma), g.const(f"layers.{i}.beta", norm.beta),
                g.const(f"layers.{i}.running_mean", norm.running_mean),
                g.const(f"layers.{i}.running_var", norm.running_var),
            ], epsilon=norm.eps)
        A = g.activation(layer.activation, Z)
    outputs = [onnx.helper.make_tensor_value_info("output", elem, ["batch", net.n_outputs])]
    if net.is_classifier:
        g.node("Identity", [A], output="output")
        g.node("Identity", [g.labels(model, A)], output="label")
        if model.task == "multilabel":
            label = onnx.helper.make_tensor_value_info("label", 7, ["batch", net.n_outputs])
        else:
            kind = model.classes.dtype if model.classes is not None else np.dtype(np.int64)
            label_type = (onnx.TensorProto.STRING if kind.kind in "US"
                          else onnx.helper.np_dtype_to_tensor_dtype(kind))
            label = onnx.helper.make_tensor_value_info("label", label_type, ["batch"])
        outputs.append(label)
    else:
        g.node("Identity", [g.target_inverse(model.target_scaler, A)], output="output")
    graph = onnx.helper.make_graph(
        g.nodes,
        "deltaprop_mlp",
        [onnx.helper.make_tensor_value_info("input", elem, ["batch", net.n_inputs])],
        outputs,
        initializer=g.initializers,
    )
    from deltaprop import __version__

    opset_ids = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(
        graph,
        opset_imports=opset_ids,
        producer_name="deltaprop",
        producer_version=__version__,
        ir_version=onnx.helper.find_min_ir_version_for(opset_ids),
    )
    doc = {"config": str(net.config())}
    if model.classes is not None:
        doc["classes"] = str(model.classes.tolist())
    onnx.helper.set_model_props(proto, doc)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Any, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> None:
    """Write ``model`` (a Model or Network) as an ONNX file at ``path`` (atomically)."""
    from deltaprop.io import write_atomically

    proto = to_model(model, opset=opset)
    write_atomically(Path(path), proto.SerializeToString())


def export_file(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
) -> Any:
    """Load the deltaprop model file ``model_path`` and write it as ONNX at ``out_path``.

    Returns the loaded Model. Raises ``io.ModelFileError`` for a bad model file and
    :class:`OnnxUnavailableError` when ``onnx`` is not installed (before reading anything).
    """
    from deltaprop import io

    _onnx()
    model = io.load(model_path)
    export(model, out_path, opset=opset)
    return model
