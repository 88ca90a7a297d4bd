"""``executorch``: the phone target, run on this machine as a proxy (XNNPACK's x86 kernels, not a phone).

The variant is exported with ``torch.export``, lowered with the XNNPACK partitioner
(``to_edge_transform_and_lower``) and serialized to a ``.pte`` program: the file an Android/iOS app
loads (:func:`export_pte`). The runner loads that program in ExecuTorch's runtime
(``executorch.runtime.Runtime``) and sizes its thread pool to ``threads``. fp32, and int8 through
XNNPACK's own quantizer (PT2E: per-channel symmetric int8 weights, int8 activations, calibrated on
the calibration frames); bf16 answers unavailable.

ExecuTorch is an optional extra (``pip install 'compressbench[executorch]'``). Checked before
installing: executorch 1.5.1's wheel names no torch in its Requires-Dist (it pins
``torchao>=0.18,<0.19``, which names none either), and installed into a separate directory it
exported and ran the reduced detector beside torch 2.13.0 (outputs within 4e-7 of eager). It is not a
default dependency because it also pulls coremltools, scikit-learn, hydra-core and more.
"""

from __future__ import annotations

import warnings

import torch

from compressbench.errors import CompressbenchError
from compressbench.report import write_atomic
from compressbench.runtimes.base import (
    DEFAULT_CALIBRATION_FRAMES,
    Prepared,
    RunRecord,
    RuntimeMissing,
    RuntimeUnavailable,
    default_calibration,
    first_line,
)
from compressbench.runtimes.onnx import _output_keys, _TupleOutputs, export_obstacle
from compressbench.runtimes.registry import register_runtime
from compressbench.warnings import quiet_native_stderr

LABEL = "XNNPACK x86 kernels, a proxy for a phone"
WHY_MISSING = (
    "executorch is not installed: it is an optional extra (pip install 'compressbench[executorch]'), "
    "not installed by make install (see README, Runtimes)"
)


def executorch_version() -> str:
    try:
        import executorch  # noqa: F401
    except ImportError:
        raise RuntimeMissing(WHY_MISSING) from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("executorch")
    except PackageNotFoundError:  # importable from a path pip does not know
        return "unknown"


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


def export_pte_bytes(
    module: torch.nn.Module, example: torch.Tensor, int8_calibration: torch.Tensor | None = None
) -> bytes:
    """The detector as an ExecuTorch program with the XNNPACK delegate (outputs in DETECTOR_OUTPUTS
    order); with ``int8_calibration`` frames, quantized to int8 by XNNPACK's quantizer first."""
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
            lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            return bytes(lowered.to_executorch().buffer)
    except Exception as exc:  # torch.export and the lowering raise many types
        raise CompressbenchError(f"cannot export {type(module).__name__} to ExecuTorch: {first_line(exc)}") from None


def export_pte(module: torch.nn.Module, path, example: torch.Tensor):
    """Write the ``.pte`` file at ``path`` (atomically); returns the path."""
    return write_atomic(path, export_pte_bytes(module, example))


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
        record = RunRecord("executorch", self.version(), precision, precision, threads, notes=[LABEL])
        if precision == "bf16":
            raise RuntimeUnavailable("executorch bf16 is not wired (XNNPACK runs fp32 or int8 here); use fp32 or int8")
        frames = None
        if precision == "int8":
            frames = calibration if calibration is not None else default_calibration(batch)
            frames = frames[:DEFAULT_CALIBRATION_FRAMES]
            record.notes.append(f"XNNPACK quantizer: per-channel int8 weights, int8 activations, {len(frames)} frames")
        try:
            pte = export_pte_bytes(module, batch, frames)
        except CompressbenchError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        with torch.no_grad():
            keys = list(_output_keys(module(batch[:1])))
        runner = ExecuTorchRunner(pte, keys, threads)
        record.threads = runner.threads
        return Prepared(runner, batch, record, graph=pte)
