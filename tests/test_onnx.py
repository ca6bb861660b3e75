"""ONNX export: the graph checks, and onnxruntime computes what deltaprop computes.

Tolerance: float32 networks are compared at atol 1e-5 (the issue's bound). Both sides do the
same float32 arithmetic in a possibly different order (BLAS blocking, onnxruntime's own
exp/tanh), so outputs of magnitude ≲ 10 differ by a few float32 ulps (~1e-6); seen: ≤ 6e-8.
float64 networks are compared at atol 1e-12 — far tighter, so a float32 detour anywhere in a
float64 graph (which would give ~1e-7 errors) fails.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deltaprop as dp
from conftest import randomize_parameters
from deltaprop import io, onnx_export

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

HIDDEN = ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "softplus", "gelu", "identity")
BIAS = ("learned", "frozen", "none", "unit")
OUTPUTS = (("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse"),
           ("exp", "poisson"))
ATOL = {"float32": 1e-5, "float64": 1e-12}


def run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": X})[0]


def make_net(rng, hidden, bias, dtype, output=("softmax", "cross_entropy")):
    net = dp.Network([4, 6, 5, 3], activation=hidden, output=output[0], loss=output[1],
                     bias=bias, dtype=dtype, seed=int(rng.integers(2**31)))
    randomize_parameters(net, rng)  # biases and bias-unit columns ≠ 0, so a lost one shows
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", BIAS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_onnxruntime_equals_predict_proba(rng, hidden, bias, dtype):
    net = make_net(rng, hidden, bias, dtype)
    # inputs scaled so every activation sees both signs and its saturating ranges
    X = (3 * rng.normal(size=(17, 4))).astype(dtype)
    # opset 20 differs from 17 only for GELU: native Gelu(approximate="tanh") vs its formula
    for opset in (17, 20) if hidden == "gelu" else (17,):
        model = onnx_export.to_model(net, opset=opset)
        onnx.checker.check_model(model, full_check=True)
        got = run(model, X)
        assert got.dtype == net.dtype
        np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o[0])
def test_output_layers(rng, output, dtype):
    net = make_net(rng, "tanh", ["learned", "unit", "none"], dtype, output)
    X = rng.normal(size=(5, 4)).astype(dtype)
    np.testing.assert_allclose(
        run(onnx_export.to_model(net), X), net.predict_proba(X), rtol=0, atol=ATOL[dtype]
    )


def test_graph_structure_per_bias_mode(rng):
    net = make_net(rng, "relu", ["none", "unit", "frozen"], "float32")
    model = onnx_export.to_model(net)
    ops = [n.op_type for n in model.graph.node]
    # the network, A^L as "output", then the predicted class index as "label"
    assert ops == ["MatMul", "Relu", "Gemm", "Relu", "Gemm", "Softmax", "Identity", "ArgMax",
                   "Identity"]
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    first, unit = model.graph.node[0], model.graph.node[2]
    assert len(first.input) == 2  # "none": no bias input at all
    np.testing.assert_array_equal(init[first.input[1]], net.layers[0].W.T)
    # "unit": the bias unit's column is Gemm's C, the rest of W is B (transB=1)
    np.testing.assert_array_equal(init[unit.input[1]], net.layers[1].W[:, :-1])
    np.testing.assert_array_equal(init[unit.input[2]], net.layers[1].W[:, -1])
    assert {a.name: a.i for a in unit.attribute} == {"transB": 1}
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output", "label"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch" and not batch.HasField("dim_value")


def test_opset_and_ir_version_are_explicit(rng):
    net = make_net(rng, "gelu", "learned", "float32")
    old, new = onnx_export.to_model(net, opset=17), onnx_export.to_model(net, opset=20)
    assert [o.version for o in old.opset_import] == [17] and old.ir_version == 8
    assert [o.version for o in new.opset_import] == [20] and new.ir_version == 9
    assert "Gelu" not in {n.op_type for n in old.graph.node}
    gelu = [n for n in new.graph.node if n.op_type == "Gelu"]
    assert [a.s for n in gelu for a in n.attribute] == [b"tanh", b"tanh"]
    leaky = onnx_export.to_model(make_net(rng, "leaky_relu", "learned", "float32"))
    alphas = [a.f for n in leaky.graph.node if n.op_type == "LeakyRelu" for a in n.attribute]
    assert alphas == pytest.approx([0.01, 0.01])


@pytest.mark.parametrize("opset", [12, 99, "17", True])
def test_bad_opset(rng, opset):
    with pytest.raises(ValueError, match="opset"):
        onnx_export.to_model(make_net(rng, "relu", "learned", "float32"), opset=opset)


def test_to_onnx_and_export_file(rng, tmp_path):
    net = make_net(rng, "elu", "unit", "float64")
    X = rng.normal(size=(6, 4))
    net.to_onnx(tmp_path / "a.onnx")
    model_path = tmp_path / "model.safetensors"
    net.save(model_path)
    onnx_export.export_file(model_path, tmp_path / "b.onnx")
    for name in ("a.onnx", "b.onnx"):
        model = onnx.load(tmp_path / name)
        onnx.checker.check_model(model, full_check=True)
        np.testing.assert_allclose(run(model, X), net.predict_proba(X), rtol=0, atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx", "model.safetensors"]


def test_export_file_bad_model(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(io.ModelFileError):
        onnx_export.export_file(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_missing_onnx_names_the_extra(rng, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    net = make_net(rng, "relu", "learned", "float32")
    with pytest.raises(ImportError, match=r"install deltaprop\[onnx\]"):
        net.to_onnx(tmp_path / "x.onnx")
    with pytest.raises(onnx_export.OnnxUnavailableError):
        onnx_export.export_file(tmp_path / "missing.safetensors", tmp_path / "x.onnx")


def test_sklearn_estimator_network_exports(rng):
    from deltaprop.sklearn import MLPClassifier

    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier((5,), max_iter=5, random_state=0, bias="unit")
    with pytest.warns(Warning):  # ConvergenceWarning: 5 epochs are deliberately too few
        clf.fit(X, y)
    got = run(onnx_export.to_model(clf.network_), X)
    np.testing.assert_allclose(got[:, 0], clf.predict_proba(X)[:, 1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_batch_norm_exports_and_dropout_does_not(rng, hidden, dtype, tmp_path):
    """BatchNormalization with the running statistics between Gemm and σ; no Dropout node;
    onnxruntime answers as predict (eval mode) on raw rows, for a Model with scaling too."""
    net = dp.Network([4, 6, 5, 3], activation=hidden, dtype=dtype, seed=1, batch_norm=True,
                     dropout=[0.5, 0.2])
    X = (3 * rng.normal(size=(60, 4)) + 1).astype(dtype)
    y = rng.integers(0, 3, 60)
    model = dp.Model(net)
    model.fit(X, y, epochs=2, batch_size=10, verbose=0)  # running statistics ≠ 0 and 1
    assert not np.allclose(net.layers[0].norm.running_var, 1)
    proto = onnx_export.to_model(model)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("BatchNormalization") == 2 and "Dropout" not in ops
    got = run(proto, X)
    np.testing.assert_allclose(got, model.outputs(X), rtol=0, atol=ATOL[dtype])
    path = tmp_path / "bn.safetensors"
    model.save(path)
    np.testing.assert_allclose(run(onnx_export.to_model(io.load(path)), X), got, rtol=0,
                               atol=ATOL[dtype])
