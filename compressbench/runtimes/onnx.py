"""ONNX export of detectors (and their parts) and ONNX Runtime sessions that run them.

(Moved here from ``compressbench/runtime/onnx.py``; every runtime that reads ONNX starts from this export.)

- :func:`export_onnx` / :func:`export_onnx_bytes`: a detector (``forward`` returns a dict) becomes a
  graph with one input ``images`` and the outputs ``value``, ``jacobian`` (when present), ``heatmap``;
  a part (``forward`` returns one tensor) gets one output ``output``. The batch axis is dynamic.
- :class:`OnnxRunner`: ``runner(images) -> {"value": ..., ...}`` with torch tensors, like the detector.
- :class:`OnnxModule`: an ``nn.Module`` that holds a serialized graph as a ``uint8`` buffer and runs
  it in ONNX Runtime, so a variant with an ONNX Runtime part saves and reloads like any other.

The legacy TorchScript exporter (``dynamo=False``) is used: it handles these plain convolutional
graphs directly and does not need ``torch.export`` to succeed.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.files import write_atomic

DETECTOR_OUTPUTS = ("value", "jacobian", "heatmap")
INPUT_NAME = "images"
PART_INPUT = "input"
PART_OUTPUT = "output"
DEFAULT_OPSET = 17
QUIET_LOG_LEVEL = 3  # onnxruntime: errors only


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def export_obstacle(module: nn.Module) -> str | None:
    """Why ``module`` cannot be exported to ONNX, or None. Modules that know they cannot be traced
    say so with an ``onnx_export_obstacle`` attribute (e.g. a part already running in ONNX Runtime)."""
    for name, child in module.named_modules():
        where = name or "the model itself"
        reason = getattr(child, "onnx_export_obstacle", None)
        if reason:
            return f"{where} {reason}"
        if type(child).__module__.startswith("torch.ao.nn.quantized"):
            return (
                f"{where} is a PyTorch int8 module ({type(child).__name__}, e.g. from quantize backend=fx), "
                "which the ONNX exporter does not support; export the float model, or quantize with "
                "backend=onnxruntime"
            )
    return None


class _TupleOutputs(nn.Module):
    """Detector dict outputs as a tuple in a fixed order (the exporter needs positional outputs)."""

    def __init__(self, model: nn.Module, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model  # its name is the first scope of every node name (detector_node_scope)
        self.keys = keys

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(out[key] for key in self.keys)


def detector_node_scope(module_name: str) -> str:
    """The prefix the exporter gives the ONNX node names of submodule ``module_name`` (a dotted
    ``named_modules`` name) of a detector exported by :func:`export_onnx_bytes`, e.g.
    ``jacobian_pool`` -> ``/model/jacobian_pool/``."""
    return "/" + "/".join(["model", *module_name.split(".")]) + "/"


def _output_keys(outputs) -> tuple[str, ...]:
    known = [k for k in DETECTOR_OUTPUTS if k in outputs]
    return tuple(known + sorted(k for k in outputs if k not in DETECTOR_OUTPUTS))


_FROZEN: dict | None = None  # (id, shape, opset) -> (module, bytes) inside frozen_exports()


@contextlib.contextmanager
def frozen_exports() -> Iterator[None]:
    """Inside the block, exporting the same module object at the same input shape again returns
    its first export: for a caller that prepares one unchanged module many times (the sensitivity
    analysis quantizes one model with different float layers, and the plan a module carries does
    not change its float graph). The module must not change inside the block."""
    global _FROZEN
    outer = _FROZEN
    _FROZEN = {} if outer is None else outer
    try:
        yield
    finally:
        _FROZEN = outer


def export_onnx_bytes(module: nn.Module, example: torch.Tensor, opset: int = DEFAULT_OPSET) -> bytes:
    """Serialize ``module`` (eval mode, float) to ONNX; see the module docstring for the names."""
    if opset < DEFAULT_OPSET:
        raise CompressbenchError(f"ONNX opset must be >= {DEFAULT_OPSET}, got {opset}")
    key = (id(module), tuple(example.shape), opset)
    if _FROZEN is not None and key in _FROZEN:
        return _FROZEN[key][1]
    obstacle = export_obstacle(module)
    if obstacle:
        raise CompressbenchError(f"cannot export to ONNX: {obstacle}")
    # The exporter restores the exported module's training flag recursively afterwards: exporting
    # a fresh (training-mode) wrapper around the caller's eval model switched that model to
    # training mode. It only ever sees a private eval copy.
    model = copy.deepcopy(module).eval()
    with torch.no_grad():
        probe = model(example)
    if isinstance(probe, dict):
        keys = _output_keys(probe)
        model = _TupleOutputs(model, keys).eval()
        input_names, output_names = [INPUT_NAME], list(keys)
    elif isinstance(probe, torch.Tensor):
        input_names, output_names = [PART_INPUT], [PART_OUTPUT]
    else:
        raise CompressbenchError(f"cannot export to ONNX: forward returns {type(probe).__name__}, not a tensor or dict")
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                buffer,
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                dynamic_axes={name: {0: "batch"} for name in input_names + output_names},
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean "this graph does not export"
        detail = _first_line(exc)
        raise CompressbenchError(f"cannot export {type(module).__name__} to ONNX: {detail}") from None
    if _FROZEN is not None:
        _FROZEN[key] = (module, buffer.getvalue())  # the module is held, so its id is not reused
    return buffer.getvalue()


def export_onnx(module: nn.Module, path: str | Path, example: torch.Tensor, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``module`` as an ONNX file at ``path`` (atomically); returns the path."""
    return write_atomic(path, export_onnx_bytes(module, example, opset))


def make_session(
    source: bytes | str | Path,
    threads: int | None = None,
    *,
    optimized_path: str | Path | None = None,
    profile_prefix: str | Path | None = None,
):
    """An ONNX Runtime CPU session for a graph given as bytes or a file, with ``threads`` intra-op
    threads (default: torch's current thread count, so both runtimes are compared on equal terms).
    ``optimized_path``: also write the graph as ORT optimized it; ``profile_prefix``: record per-op
    times (ORT's profiler, a JSON file named from the prefix, written by ``end_profiling()``)."""
    import onnxruntime as ort

    if threads is not None and threads <= 0:
        raise CompressbenchError(f"threads must be positive, got {threads}")
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if not path.is_file():
            raise CompressbenchError(f"ONNX file {path} does not exist")
        source = path.read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = QUIET_LOG_LEVEL
    # ORT's idle workers spin for a while after each run; in an interleaved comparison they would
    # take a core from whichever model runs next, so they sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    try:
        return ort.InferenceSession(bytes(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's pybind errors (InvalidProtobuf, Fail, ...) share no base
        detail = _first_line(exc)
        raise CompressbenchError(f"ONNX Runtime cannot load the graph: {detail}") from None


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float32).contiguous().cpu().numpy()


class OnnxRunner:
    """Run an exported detector: ``runner(images)`` returns a dict of torch tensors keyed by the
    graph's output names (``value``, ``jacobian``, ``heatmap`` for :func:`export_onnx` files)."""

    def __init__(self, source: bytes | str | Path, threads: int | None = None, **session_options) -> None:
        self.session = make_session(source, threads, **session_options)
        self.threads = self.session.get_session_options().intra_op_num_threads
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.session.run(self.output_names, {self.input_name: _to_numpy(images)})
        return {name: torch.from_numpy(array) for name, array in zip(self.output_names, outputs)}


class OnnxModule(nn.Module):
    """An ONNX graph (``onnx_bytes``, a uint8 buffer, so it is in the state dict) run by ONNX Runtime.

    One output comes back as a tensor, several as a dict by output name. The session is created on
    the first call, and again whenever torch's thread count changes or a state dict is loaded.
    """

    onnx_export_obstacle = "already runs in ONNX Runtime (quantize backend=onnxruntime); it cannot be traced again"

    def __init__(self, onnx_bytes: bytes | torch.Tensor) -> None:
        super().__init__()
        if isinstance(onnx_bytes, torch.Tensor):
            data = onnx_bytes.detach().to(torch.uint8).clone()
        else:
            data = torch.frombuffer(bytearray(onnx_bytes), dtype=torch.uint8).clone()
        self.register_buffer("onnx_bytes", data)
        self._session = None
        self._session_threads = 0

    @classmethod
    def empty(cls, size: int) -> OnnxModule:
        """A placeholder of ``size`` bytes, filled when a saved state dict is loaded."""
        return cls(torch.zeros(size, dtype=torch.uint8))

    def serialized(self) -> bytes:
        return self.onnx_bytes.numpy().tobytes()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._session = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_session"] = None  # sessions are neither copyable nor picklable; rebuilt lazily
        return state

    def session(self):
        threads = torch.get_num_threads()
        if self._session is None or self._session_threads != threads:
            self._session = make_session(self.serialized(), threads)
            self._session_threads = threads
        return self._session

    def forward(self, x: torch.Tensor):
        session = self.session()
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, {session.get_inputs()[0].name: _to_numpy(x)})
        tensors = [torch.from_numpy(a) for a in outputs]
        return tensors[0] if len(tensors) == 1 else dict(zip(names, tensors))
