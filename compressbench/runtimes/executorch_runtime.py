"""``executorch``: the phone target, run on this machine as a proxy (XNNPACK's x86 kernels, not a phone).

The variant is exported with ``torch.export``, lowered with the XNNPACK partitioner
(``to_edge_transform_and_lower``) and serialized to a ``.pte`` program: the file an Android/iOS app
loads (:func:`export_pte`). The runner loads that program in ExecuTorch's runtime
(``executorch.runtime.Runtime``) and sizes its thread pool to ``threads``. fp32, and int8 through
XNNPACK's own quantizer (PT2E: per-channel symmetric int8 weights, int8 activations, calibrated on
the calibration frames); bf16 answers unavailable.

What ran is read from the lowered program itself (:func:`lowered_precisions`): XNNPACK fuses a
dequantize -> op -> quantize chain of its subgraph into one int8 kernel, so a delegated op between
the two ran in int8 and any other op in the dtype of the tensor it computes; ops left to the
portable kernels run in the dtype of their output.

A bare ``.pte`` counts its parameters from the program itself (:func:`pte_weight_count`: the
XNNPACK subgraphs' constant tensors, read back with executorch's deserializer and ``flatc``).

ExecuTorch is an optional extra (``pip install 'compressbench[executorch]'``). Checked before
installing: executorch 1.5.1's wheel names no torch in its Requires-Dist (it pins
``torchao>=0.18,<0.19``, which names none either), and installed into a separate directory it
exported and ran the reduced detector beside torch 2.13.0 (outputs within 4e-7 of eager). It is not a
default dependency because it also pulls coremltools, scikit-learn, hydra-core and more.
"""

from __future__ import annotations

import collections
import math
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from compressbench.errors import CompressbenchError
from compressbench.files import write_atomic
from compressbench.runtimes.base import (
    DEFAULT_CALIBRATION_FRAMES,
    UNKNOWN,
    Prepared,
    RunRecord,
    RuntimeMissing,
    RuntimeUnavailable,
    default_calibration,
    first_line,
    observed_precision,
)
from compressbench.runtimes.onnx import _output_keys, _TupleOutputs, export_obstacle
from compressbench.runtimes.registry import register_runtime
from compressbench.warnings import import_quietly, quiet_native_stderr

LABEL = "XNNPACK x86 kernels, a proxy for a phone"
READ_BACK_SOURCE = "executorch lowered program (XNNPACK subgraphs and portable ops)"
DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int8: "int8", torch.uint8: "int8"}
QUANTIZE = {"quantize_per_tensor", "quantize_per_channel"}
DEQUANTIZE = {"dequantize_per_tensor", "dequantize_per_channel"}
# instructions that run no kernel or only move memory (``*_copy`` views): they compute in none
FUSED_ACTIVATIONS = {"relu", "hardtanh", "clamp"}
NO_COMPUTE = {"alloc", "getitem", "clone", "where"} | QUANTIZE | DEQUANTIZE
WHY_MISSING = (
    "executorch is not installed: it is an optional extra (pip install 'compressbench[executorch]'), "
    "not installed by make install (see docs/runtimes.md)"
)


def executorch_version() -> str:
    try:
        import executorch  # noqa: F401
    except ImportError:
        raise RuntimeMissing(WHY_MISSING) from None
    quiet_torchao()
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("executorch")
    except PackageNotFoundError:  # importable from a path pip does not know
        return "unknown"


def quiet_torchao() -> None:
    """Import torchao (every ``executorch.*`` module imports it) before anything else does, without the
    log lines its import prints that the user can do nothing about (compressbench.warnings.IMPORT_NOISE:
    its CUDA kernels failing to load on a CPU build, torch deprecating how it registers an Enum).
    Later imports find it loaded and print nothing; any other line it logs still shows."""
    try:
        import_quietly("torchao")
    except ImportError:  # executorch without torchao: its own imports will say what is missing
        pass


def _quantized_xnnpack(program, example: torch.Tensor, calibration: torch.Tensor):
    """``program`` (an ExportedProgram for ``example``'s static shape) statically quantized with
    XNNPACK's quantizer (per-channel symmetric int8 weights, int8 activations), calibrated in
    batches of that shape, re-exported."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    observed = prepare_pt2e(program.module(), quantizer)
    size = len(example)
    with torch.no_grad():
        for start in range(0, len(calibration) - size + 1, size):
            observed(calibration[start : start + size].float())
    return torch.export.export(convert_pt2e(observed), (example,))


def export_program(module: torch.nn.Module, example: torch.Tensor, int8_calibration: torch.Tensor | None = None):
    """The detector as an ExecuTorch program with the XNNPACK delegate (an ``ExecutorchProgramManager``,
    outputs in DETECTOR_OUTPUTS order); with ``int8_calibration`` frames, quantized to int8 by
    XNNPACK's quantizer first."""
    executorch_version()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    obstacle = export_obstacle(module)
    if obstacle:
        raise CompressbenchError(f"cannot export to ExecuTorch: {obstacle}")
    model = module.eval()
    with torch.no_grad():
        keys = _output_keys(model(example))
    try:
        with warnings.catch_warnings():  # torch.export and the lowering warn about their own internals
            warnings.simplefilter("ignore")
            program = torch.export.export(_TupleOutputs(model, keys).eval(), (example,))
            if int8_calibration is not None:
                program = _quantized_xnnpack(program, example, int8_calibration)
            return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as exc:  # torch.export and the lowering raise many types
        raise CompressbenchError(f"cannot export {type(module).__name__} to ExecuTorch: {first_line(exc)}") from None


def export_pte_bytes(
    module: torch.nn.Module, example: torch.Tensor, int8_calibration: torch.Tensor | None = None
) -> bytes:
    """The ``.pte`` bytes of :func:`export_program`."""
    return bytes(export_program(module, example, int8_calibration).buffer)


@dataclass(frozen=True)
class KernelSlot:
    """One instruction of an ExecuTorch program that runs kernels, in execution order: a portable
    operator (``op`` as ETDump names it, e.g. ``upsample_nearest2d.vec_out``, and the module it
    came from) or an XNNPACK delegate call (``op`` ``"delegate"``, ``nodes``: the (aten op, module)
    pairs of the subgraph it runs, in the order XNNPACK defines them)."""

    op: str
    module: str = ""
    nodes: tuple[tuple[str, str], ...] = ()


def _module_path(node) -> str:
    """``model.predictor.encoder.down_blocks.0.conv``: where torch.export says the node came from."""
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _aten_name(target) -> str:
    """``convolution`` for ``aten.convolution.default`` (edge or core op overloads)."""
    name = target.name() if callable(getattr(target, "name", None)) else getattr(target, "__name__", str(target))
    return name.split("::")[-1].split(".")[0]


def _op_precision(node, delegated: bool) -> str | None:
    """The precision ``node`` computes in, or None for an op that computes nothing or computes only
    integers and booleans (index and shape arithmetic)."""
    name = _aten_name(node.target)
    if node.op != "call_function" or name in NO_COMPUTE or name.endswith("_copy"):
        return None
    if delegated:
        sources = [a for a in node.all_input_nodes if a.op == "call_function"]
        if any(_aten_name(a.target) in DEQUANTIZE for a in sources):
            return "int8"  # XNNPACK takes the dequantize into a quantized kernel
        if name in FUSED_ACTIVATIONS and sources and _op_precision(sources[0], True) == "int8":
            return "int8"  # fused into the int8 kernel before it
    dtype = getattr(node.meta.get("val"), "dtype", None)
    if dtype is None or not (dtype.is_floating_point or dtype in (torch.int8, torch.uint8)):
        return None
    return DTYPES.get(dtype, str(dtype))


def lowered_precisions(program) -> collections.Counter:
    """(aten op, precision) counts of the ops an ``ExecutorchProgramManager`` runs: inside its
    XNNPACK subgraphs and in portable kernels."""
    graph_module = program.exported_program().graph_module
    counts: collections.Counter = collections.Counter()
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        if str(node.target) == "executorch_call_delegate":
            lowered = getattr(graph_module, node.args[0].target)
            pairs = [(n, True) for n in lowered.original_module.graph_module.graph.nodes]
        else:
            pairs = [(node, False)]
        for inner, delegated in pairs:
            precision = _op_precision(inner, delegated) if inner.op == "call_function" else None
            if precision is not None:
                counts[(_aten_name(inner.target), precision)] += 1
    return counts


def kernel_layout(program) -> tuple[KernelSlot, ...]:
    """The kernel-running instructions of an ``ExecutorchProgramManager`` in execution order (memory
    planning's ``alloc`` and tuple ``getitem`` run no kernel): what names ETDump's events."""
    graph_module = program.exported_program().graph_module
    slots = []
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or getattr(node.target, "__name__", "") in ("alloc", "getitem"):
            continue
        if str(node.target) == "executorch_call_delegate":
            lowered = getattr(graph_module, node.args[0].target)
            inner = [
                (_aten_name(n.target), _module_path(n))
                for n in lowered.original_module.graph_module.graph.nodes
                if n.op == "call_function" and getattr(n.target, "__name__", "") != "getitem"
            ]
            slots.append(KernelSlot("delegate", "", tuple(inner)))
        else:
            slots.append(KernelSlot(getattr(node.target, "__name__", str(node.target)), _module_path(node)))
    return tuple(slots)


def export_pte(module: torch.nn.Module, path, example: torch.Tensor):
    """Write the ``.pte`` file at ``path`` (atomically); returns the path."""
    return write_atomic(path, export_pte_bytes(module, example))


XNNPACK_BACKEND = "XnnpackBackend"
NON_FINITE = re.compile(rb"(?<=[\s:\[,])-?(inf|nan)(?=[\s,\]}])")  # flatc writes them bare; JSON has none


def _xnnpack_constant_elements(blob: bytes) -> int:
    """Elements of the constant tensors (weights and biases, BatchNorm folded in) of one XNNPACK
    subgraph: its serialized XNNGraph (after the XNNPACK header) read back to JSON with the schema
    and the ``flatc`` that executorch ships, each tensor value with a constant buffer counted by its dims."""
    import importlib.resources
    import json
    import tempfile

    from executorch.backends.xnnpack import serialization
    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _flatc_decompile

    try:
        header = XNNHeader.from_bytes(blob[: XNNHeader.EXPECTED_LENGTH])
        graph = blob[header.flatbuffer_offset : header.flatbuffer_offset + header.flatbuffer_size]
    except ValueError:  # written before the header existed: the blob is the flatbuffer
        graph = blob
    with tempfile.TemporaryDirectory(prefix="compressbench-pte-") as tmp:
        folder = Path(tmp)
        (folder / "schema.fbs").write_bytes(importlib.resources.files(serialization).joinpath("schema.fbs").read_bytes())
        (folder / "graph.bin").write_bytes(graph)
        _flatc_decompile(tmp, str(folder / "schema.fbs"), str(folder / "graph.bin"), ["--raw-binary"])
        doc = json.loads(NON_FINITE.sub(b"null", (folder / "graph.json").read_bytes()))
    total = 0
    for value in doc.get("xvalues", []):
        tensor = value.get("xvalue_union") or {}
        tensor = tensor.get("tensor_value", tensor)  # a quantized tensor wraps its tensor value
        if tensor.get("constant_buffer_idx"):
            total += math.prod(tensor.get("dims") or [])
    return total


def _used_values(plan) -> set[int]:
    """Indices of the values an instruction of ``plan`` reads (lists opened): an int8 lowering can
    leave a constant no instruction reads (the blur kernel, copied into its XNNPACK subgraph)."""
    from executorch.exir.schema import OptionalTensorList, TensorList

    used = {i for chain in plan.chains for ins in chain.instructions for i in (getattr(ins.instr_args, "args", None) or ())}
    for index in list(used):
        value = plan.values[index].val
        if isinstance(value, (TensorList, OptionalTensorList)):  # lists of value indices
            used.update(i for i in value.items if i >= 0)
    return used


def pte_weight_count(pte: bytes) -> int | None:
    """Elements of an ExecuTorch program's constant tensors: those of its XNNPACK subgraphs (where
    the lowering put the weights) and those portable kernels read (0-d scalars aside: literals,
    not weights). The program is read with executorch's own deserializer
    (``executorch.exir._serialize``, a private module: no public API reads a program's constants).
    None where a delegate other than XNNPACK holds some (its payload is opaque) or the program
    cannot be read back."""
    quiet_torchao()
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.exir.schema import Tensor

    try:
        program = deserialize_pte_binary(pte).program
        total = 0
        for plan in program.execution_plan:
            for index in _used_values(plan):
                tensor = plan.values[index].val
                if isinstance(tensor, Tensor) and tensor.data_buffer_idx > 0 and len(tensor.sizes) > 0:
                    total += math.prod(tensor.sizes)
            for delegate in plan.delegates:
                if delegate.id != XNNPACK_BACKEND:
                    return None
                total += _xnnpack_constant_elements(program.backend_delegate_data[delegate.processed.index].data)
    except (ImportError, ValueError, KeyError, IndexError, TypeError, OSError, subprocess.SubprocessError, AttributeError):
        return None  # a private serializer that changed, or no flatc: the count is unknown, not wrong
    return total


class ExecuTorchRunner:
    """``runner(images)`` -> the detector's output dict, from a loaded ExecuTorch program."""

    def __init__(self, pte: bytes, keys: list[str], threads: int) -> None:
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        with quiet_native_stderr():  # its CPU probing logs to stderr on x86
            portable_lib._unsafe_reset_threadpool(threads)
            # the method borrows from the program and the program from the bytes: all three stay alive
            self.pte = pte
            self.program = Runtime.get().load_program(pte)
            self.method = self.program.load_method("forward")
        self.threads = portable_lib._threadpool_get_thread_count()
        self.keys = keys

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.method.execute([images.detach().float().contiguous()])
        # clone: the outputs may live in the program's planned memory, which the next call reuses
        return {key: out.clone() for key, out in zip(self.keys, outputs)}


@register_runtime
class ExecuTorchRuntime:
    name = "executorch"
    summary = f"ExecuTorch with the XNNPACK delegate ({LABEL}); optional extra"

    def version(self) -> str:
        return executorch_version()

    def prepare(self, module, batch, threads, precision, calibration=None, calibration_method=None) -> Prepared:
        version, notes = self.version(), [LABEL]
        if precision == "bf16":
            raise RuntimeUnavailable("executorch bf16 is not wired (XNNPACK runs fp32 or int8 here); use fp32 or int8")
        frames = None
        if precision == "int8":
            frames = calibration if calibration is not None else default_calibration(batch)
            frames = frames[:DEFAULT_CALIBRATION_FRAMES]
            notes.append(f"XNNPACK quantizer: per-channel int8 weights, int8 activations, {len(frames)} frames")
        try:
            program = export_program(module, batch, frames)
        except CompressbenchError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        pte = bytes(program.buffer)
        with torch.no_grad():
            keys = list(_output_keys(module(batch[:1])))
        runner = ExecuTorchRunner(pte, keys, threads)
        used, fallback = observed_precision(lowered_precisions(program), precision, lambda op: op == "convolution")
        source = READ_BACK_SOURCE if used != UNKNOWN else UNKNOWN
        record = RunRecord("executorch", version, precision, used, runner.threads, fallback, notes, source)
        return Prepared(runner, batch, record, graph=pte, layout=kernel_layout(program))

    artifact_suffix = ".pte"

    def write_artifact(self, prepared: Prepared, folder: Path) -> list[Path]:
        path = folder / "model.pte"
        path.write_bytes(prepared.graph)
        return [path]

    def load_artifact(self, path: Path, threads: int, precision: str, outputs: list[str]) -> ExecuTorchRunner:
        self.version()
        return ExecuTorchRunner(Path(path).read_bytes(), list(outputs), threads)

    def _method_meta(self, path: Path):
        self.version()
        from executorch.runtime import Runtime

        try:
            with quiet_native_stderr():
                return Runtime.get().load_program(Path(path).read_bytes()).metadata("forward")
        except Exception as exc:  # the runtime's pybind errors share no base
            raise CompressbenchError(f"ExecuTorch cannot load {path}: {first_line(exc)}") from None

    def artifact_signature(self, path: Path) -> tuple[list, list]:
        meta = self._method_meta(path)
        if meta.num_inputs() != 1:
            raise CompressbenchError(f"{path} has {meta.num_inputs()} inputs; a keypoint detector has one (the frames)")
        return list(meta.input_tensor_meta(0).sizes()), [None] * meta.num_outputs()  # a .pte names no outputs

    def artifact_weight_count(self, path: Path) -> int | None:
        """Weights and biases the program holds (:func:`pte_weight_count`); None where unreadable."""
        self.version()
        return pte_weight_count(Path(path).read_bytes())

    def artifact_output_shapes(self, path: Path) -> list[tuple[int, ...]]:
        meta = self._method_meta(path)
        return [tuple(meta.output_tensor_meta(i).sizes()) for i in range(meta.num_outputs())]

    def artifact_precision(self, path: Path, batch: torch.Tensor, threads: int, precision: str) -> tuple[str, list[str], str]:
        return UNKNOWN, [UNKNOWN], UNKNOWN  # a serialized program keeps no graph with dtypes to read back
