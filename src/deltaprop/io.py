"""save/load .safetensors + JSON metadata with a format version.

A model file is one ``.safetensors`` file (never pickle). Tensors are named as PyTorch's
``nn.Sequential`` of ``nn.Linear`` and activation modules would name them — layer i's
Linear is module 2i, so ``"0.weight"``, ``"0.bias"``, ``"2.weight"``, … — and a user can
``load_state_dict`` them into torch. A layer with batch norm and dropout is the modules
Linear, BatchNorm1d, activation, Dropout, so the indices after it move on by 2; the
BatchNorm1d's ``weight`` (γ), ``bias`` (β), ``running_mean``, ``running_var`` and
``num_batches_tracked`` are stored under its index (the dropout rates and which layers
normalise are in the configuration). A bias unit's column of W is stored as that Linear's
``bias`` (z = W_in a + w_unit · 1 is exactly a Linear with bias w_unit); ``none`` has no
bias tensor. Checkpoints add the optimizer's state (``"optimizer.<parameter>.<state>"``, e.g.
``"optimizer.layers.0.W.momentum_buffer"``; format 1 named it by position).

The header's metadata holds one JSON document under the key ``"deltaprop"``: format version,
deltaprop version, the network's constructor arguments, the model's preprocessing (input
scaler, target scaler, class labels, feature names: :meth:`Model.preprocessing`), the user's
metadata (data set name, epochs, …) and, for checkpoints, the training state (epoch,
history, optimizer hyperparameters and step, random generator state, and the learning-rate
schedule's state when one is given) — and ``data_sha256``,
the SHA-256 of the tensor bytes, so corruption of the weights is refused rather than loaded.

Format 2 (this version) stores the preprocessing; format 1 files kept class labels under
``"classes"`` and the scalers in the metadata (``meta["preprocessing"]``,
``meta["target_scaling"]``). Both load, into a :class:`~deltaprop.model.Model` whose
``predict`` on raw rows is what ``deltaprop predict`` gave for the file.

Writes are atomic: a temporary file in the same folder, flushed and fsynced, then renamed
over the target, so a crash mid-save never leaves a truncated model. ``load`` validates the
format version, every name, shape and dtype, and finiteness before building the network, and
raises :class:`ModelFileError` — one line naming the file and the problem — otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deltaprop.errors import DeltapropError, FileWriteError, ModelFileError

FORMAT_VERSION = 2
_DTYPES = {"float32": "F32", "float64": "F64"}
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def _module_indices(net: Any) -> list[tuple[int, int | None]]:
    """Per layer, the torch ``nn.Sequential`` index of its Linear and of its BatchNorm1d.

    The Sequential is, per layer: Linear, BatchNorm1d (if the layer has batch norm), the
    activation, Dropout (if p > 0) — so a plain network's layer i is module 2i.
    """
    out: list[tuple[int, int | None]] = []
    k = 0
    for layer in net.layers:
        norm = k + 1 if layer.norm is not None else None
        out.append((k, norm))
        k += 2 + (norm is not None) + (layer.dropout > 0)
    return out


def _norm_tensors(norm: Any) -> dict[str, np.ndarray]:
    """A BatchNorm's tensors under ``BatchNorm1d``'s state_dict names."""
    return {
        "weight": norm.gamma,
        "bias": norm.beta,
        "running_mean": norm.running_mean,
        "running_var": norm.running_var,
        "num_batches_tracked": np.array(norm.num_batches_tracked, dtype=np.int64),
    }


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def as_model(model_or_network: Any) -> Any:
    """A Model: the argument itself, or a Network wrapped with no preprocessing."""
    from deltaprop.model import Model
    from deltaprop.network import Network

    if isinstance(model_or_network, Network):
        return Model(model_or_network, scaler="none", target_scaler=None)
    if not isinstance(model_or_network, Model):
        raise TypeError(f"expected a deltaprop Model or Network; got {model_or_network!r}")
    return model_or_network


def tensors_of(net: Any) -> dict[str, np.ndarray]:
    """The network's parameters (and batch norm's statistics) under torch ``nn.Sequential``
    names."""
    out: dict[str, np.ndarray] = {}
    for layer, (k, k_norm) in zip(net.layers, _module_indices(net), strict=True):
        w_name, b_name = f"{k}.weight", f"{k}.bias"
        out[w_name] = np.ascontiguousarray(layer.W_in)
        if layer.has_unit:
            out[b_name] = np.ascontiguousarray(layer.W[:, -1])
        elif layer.b is not None:
            out[b_name] = layer.b
        if layer.norm is not None:
            for name, t in _norm_tensors(layer.norm).items():
                out[f"{k_norm}.{name}"] = t
    return out


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    optimizer: Any = None,
    training: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
    schedule: Any = None,
) -> None:
    """Write ``model`` (and, for a checkpoint, ``optimizer`` and ``training`` state) atomically.

    Parameters
    ----------
    model : Model or Network
        A Network is saved as a Model without preprocessing.
    path : path of the ``.safetensors`` file; replaced only once the new file is complete.
    optimizer : Optimizer, optional
        Its state arrays and hyperparameters are stored (a checkpoint).
    training : dict, optional
        JSON-friendly training state (epoch, history, …); the network's rng state is added.
    arrays : dict of ndarray, optional
        Further training-state arrays (e.g. early stopping's best weights), stored as
        ``"state.<name>"``.
    schedule : a ``schedules`` object, optional
        Its ``state_dict()`` (base rate, plateau counters, samples seen) is stored as the
        training state's ``"schedule"``; :func:`load_checkpoint` restores it.
    """
    from safetensors.numpy import save as st_save

    from deltaprop import __version__

    model = as_model(model)
    net = model.network
    tensors = tensors_of(net)
    doc: dict[str, Any] = {
        "format": "deltaprop-model",
        "format_version": FORMAT_VERSION,
        "deltaprop_version": __version__,
        "config": net.config(),
        "preprocessing": _jsonable(model.preprocessing()),
        "meta": _jsonable(model.meta),
    }
    if optimizer is not None or training is not None or schedule is not None:
        state: dict[str, Any] = {"rng": _jsonable(net.rng.bit_generator.state)}
        state.update(_jsonable(training or {}))
        if schedule is not None:
            state["schedule"] = _jsonable(schedule.state_dict())
        if optimizer is not None:
            opt = optimizer.state_dict()
            state["optimizer"] = {"name": opt["name"], "t": opt["t"], "hyper": opt["hyper"]}
            for key, array in opt["state"].items():
                tensors[f"optimizer.{key}"] = np.ascontiguousarray(array)
        for key, array in (arrays or {}).items():
            tensors[f"state.{key}"] = np.ascontiguousarray(array)
        doc["training"] = state
    # The tensors' bytes do not depend on the metadata, so a first serialisation gives the
    # data region whose checksum the header then carries (a flipped bit is caught on load).
    doc["data_sha256"] = hashlib.sha256(_data_region(st_save(tensors))).hexdigest()
    data = st_save(tensors, metadata={"deltaprop": json.dumps(doc)})
    write_atomically(Path(path), data)


def _data_region(data: bytes) -> bytes:
    """The tensor bytes of a serialised safetensors file (after the length and header)."""
    (n,) = struct.unpack("<Q", data[:8])
    return data[8 + n :]


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename over it."""
    folder = path.parent
    if not folder.is_dir():
        raise FileWriteError(f"{path}: folder {folder} does not exist")
    try:  # mkstemp makes the file 0600; give it the mode a plain open() would (or the old one)
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise FileWriteError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # a full disk, a name that is a folder, …
            raise FileWriteError(f"{path}: cannot write ({e.strerror or e})") from None
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The deltaprop document and the tensors of a model file, both checked for form."""
    from safetensors.numpy import load as st_load

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) < 8:
        raise ModelFileError(f"{path}: not a safetensors model file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(_MAX_HEADER, len(data) - 8):
        raise ModelFileError(f"{path}: not a safetensors model file (bad header length {n})")
    try:
        header = json.loads(data[8 : 8 + n])
        doc = json.loads(header["__metadata__"]["deltaprop"])
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: not a safetensors model file (header is not JSON)") from None
    except (KeyError, TypeError):
        raise ModelFileError(f"{path}: a safetensors file, but not a deltaprop model") from None
    if not isinstance(doc, dict) or doc.get("format") != "deltaprop-model":
        raise ModelFileError(f"{path}: a safetensors file, but not a deltaprop model")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version} is newer than this deltaprop reads "
            f"({FORMAT_VERSION}); upgrade deltaprop"
        )
    checksum = doc.get("data_sha256")
    if checksum is not None and hashlib.sha256(data[8 + n :]).hexdigest() != checksum:
        raise ModelFileError(f"{path}: corrupt tensor data (checksum mismatch)")
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error types for corrupt data
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(f"{path}: corrupt tensor data ({msg})") from None
    return doc, tensors


def _build(path: Path, doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> Any:
    """A Model from a checked document and its tensors, after matching every shape."""
    from deltaprop.network import Network

    config = doc.get("config")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: metadata has no network configuration")
    try:
        net = Network(**config)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: metadata describes no valid network ({e})") from None
    expected_dtype = np.dtype(config["dtype"])
    weights = {k: v for k, v in tensors.items() if not k.startswith(("optimizer.", "state."))}
    wanted = set()

    def tensor(name: str, shape: tuple[int, ...], dtype: np.dtype = expected_dtype
               ) -> np.ndarray:
        """The tensor ``name``, checked for presence, shape, dtype and finiteness."""
        wanted.add(name)
        if name not in weights:
            raise ModelFileError(f"{path}: tensor {name!r} is missing")
        t = weights[name]
        if t.shape != shape:
            raise ModelFileError(
                f"{path}: tensor {name!r} has shape {t.shape}; metadata says {shape}"
            )
        if t.dtype != dtype:
            raise ModelFileError(f"{path}: tensor {name!r} is {t.dtype}; metadata says {dtype}")
        if dtype.kind == "f" and not np.isfinite(t).all():
            raise ModelFileError(f"{path}: tensor {name!r} holds NaN or inf")
        return t

    for layer, (k, k_norm) in zip(net.layers, _module_indices(net), strict=True):
        layer.W_in[...] = tensor(f"{k}.weight", layer.W_in.shape)
        if layer.has_unit:
            layer.W[:, -1] = tensor(f"{k}.bias", (layer.n_out,))
        elif layer.b is not None:
            layer.b[...] = tensor(f"{k}.bias", (layer.n_out,))
        if layer.norm is not None:
            norm, n = layer.norm, (layer.n_out,)
            norm.gamma[...] = tensor(f"{k_norm}.weight", n)
            norm.beta[...] = tensor(f"{k_norm}.bias", n)
            norm.running_mean[...] = tensor(f"{k_norm}.running_mean", n)
            var = tensor(f"{k_norm}.running_var", n)
            if (var < 0).any():
                raise ModelFileError(f"{path}: tensor '{k_norm}.running_var' holds a "
                                     "negative variance")
            norm.running_var[...] = var
            count = tensor(f"{k_norm}.num_batches_tracked", (), np.dtype(np.int64))
            if count < 0:
                raise ModelFileError(f"{path}: tensor '{k_norm}.num_batches_tracked' is "
                                     "negative")
            norm.num_batches_tracked = int(count)
    extra = sorted(set(weights) - wanted)
    if extra:
        raise ModelFileError(f"{path}: unexpected tensor {extra[0]!r} for this network")
    return _model(path, doc, net)


def _model(path: Path, doc: dict[str, Any], net: Any) -> Any:
    """The Model around ``net``: its preprocessing from format 2, or rebuilt from format 1."""
    from deltaprop.model import Model

    meta = doc.get("meta", {})
    meta = dict(meta) if isinstance(meta, dict) else {}
    if doc["format_version"] >= 2:
        pre = doc.get("preprocessing")
    else:  # format 1: labels beside the config, scalers inside the metadata
        classes = doc.get("classes")
        pre = {
            "input": meta.pop("preprocessing", None),
            "target": meta.pop("target_scaling", None),
            # the CLI saved classifiers' labels; a bare Network's fit recorded its own
            "labels": None if classes is None else {"kind": "classes", "classes": classes},
            "feature_names": None,
        }
        if pre["target"] is None and net.task == "regression":
            pre["target"] = {"kind": "none"}
    if not isinstance(pre, dict):
        raise ModelFileError(f"{path}: metadata has no preprocessing")
    try:
        return Model.from_preprocessing(net, pre, meta)
    except DeltapropError as e:
        raise ModelFileError(f"{path}: bad preprocessing ({e})") from None


def load(path: str | os.PathLike[str]) -> Any:
    """The Model stored in a model file: network, preprocessing, labels and metadata.

    Raises
    ------
    ModelFileError
        One line naming the file and the problem, for anything but a valid model file.
    """
    path = Path(path)
    doc, tensors = _read(path)
    return _build(path, doc, tensors)


def restore_schedule(path: str | os.PathLike[str], state: dict[str, Any],
                     schedule: Any) -> None:
    """Give ``schedule`` the state a checkpoint's training ``state`` saved for it (none
    saved, or no schedule: nothing happens); a state that does not fit is a
    :class:`ModelFileError` naming the file."""
    if schedule is None or "schedule" not in state:
        return
    try:
        schedule.load_state_dict(state["schedule"])
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: the saved schedule state does not fit "
                             f"{schedule!r} ({e})") from None


def load_checkpoint(path: str | os.PathLike[str],
                    schedule: Any = None) -> tuple[Any, dict[str, Any], Any]:
    """(model, training state, optimizer) from a checkpoint written with ``optimizer=``.

    The network's random generator is restored, so training continues exactly. The
    training state's ``"arrays"`` holds what ``save`` got as ``arrays``. A ``schedule``
    (built with the run's arguments) gets the state saved with ``save(schedule=...)``; a
    file saved without one (older files, runs without a schedule) leaves it as it is.
    """
    from deltaprop import optim

    path = Path(path)
    doc, tensors = _read(path)
    model = _build(path, doc, tensors)
    net = model.network
    state = doc.get("training")
    if not isinstance(state, dict) or "optimizer" not in state:
        raise ModelFileError(f"{path}: a model file, but not a checkpoint (no training state)")
    try:
        net.rng.bit_generator.state = state["rng"]
        spec = state["optimizer"]
        opt = optim.get(spec["name"])()
        arrays = {k[len("optimizer.") :]: v for k, v in tensors.items()
                  if k.startswith("optimizer.")}
        if doc["format_version"] < 2:
            arrays = _named_by_parameter(arrays, net.trainable_names(), spec["name"])
        opt.load_state_dict({"name": spec["name"], "t": spec["t"], "hyper": spec["hyper"],
                             "state": arrays})
        epoch = state["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r} is not a count")
        _check_optimizer_state(net, opt)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: training state is malformed ({e})") from None
    restore_schedule(path, state, schedule)
    state["arrays"] = {k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}
    return model, state, opt


#: Format 1's optimizer state names that were renamed: (optimizer, old) → new.
_RENAMED_STATE = {("sgd", "b"): "momentum_buffer"}


def _named_by_parameter(arrays: dict[str, np.ndarray], names: list[str],
                        optimizer: str) -> dict[str, np.ndarray]:
    """Format 1's optimizer keys "<position>.<state>" as "<parameter>.<state>"."""
    out = {}
    for key, a in arrays.items():
        position, _, state = key.partition(".")
        if not position.isdigit() or int(position) >= len(names):
            raise ValueError(f"optimizer.{key} names no trainable parameter")
        state = _RENAMED_STATE.get((optimizer, state), state)
        out[f"{names[int(position)]}.{state}"] = a
    return out


def _check_optimizer_state(net: Any, opt: Any) -> None:
    """Every optimizer state array belongs to a trainable parameter and fits it: name, shape,
    dtype, finiteness."""
    shapes = {slot.name: slot.value.shape for slot in net.slots(None)}
    for param, arrays in opt.state.items():
        if param not in shapes:
            raise ValueError(f"optimizer state for {param!r}, which the network does not train")
        for name, a in arrays.items():
            if a.shape not in (shapes[param], (1,)):  # (1,): a per-parameter scalar
                raise ValueError(f"optimizer.{param}.{name} has shape {a.shape}; "
                                 f"its parameter has {shapes[param]}")
            if a.dtype != net.dtype or not np.isfinite(a).all():
                raise ValueError(f"optimizer.{param}.{name} is not finite {net.dtype}")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON document of a model file, after the same checks as ``load``."""
    return load_with_metadata(path)[1]


def load_with_metadata(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """(model, JSON document) of a model file, read and checked once."""
    path = Path(path)
    doc, tensors = _read(path)
    return _build(path, doc, tensors), doc
