"""Deployed files as models: an OpenVINO ``.xml``, an ``.onnx``, an ExecuTorch ``.pte``, or a folder
``compressbench export`` wrote, wrapped as a detector module that runs in the file's own runtime.

The runtime is taken from the file (its suffix is a runtime's ``artifact_suffix``), and the file is
checked when it is opened: one input of shape (N, 3, S, S) and the keypoint detector's outputs
(``value``, and ``jacobian``/``heatmap`` where it has them). A corrupt file or a foreign graph (a
classifier, another input layout) is one :class:`CompressbenchError` line. ``prepare`` on the file's
runtime runs the file itself, not an export of a PyTorch module: so
``profile``, ``evaluate``, ``compare`` and the gate measure exactly what was deployed
(:meth:`DeployedModel.prepare_on`, which :func:`~compressbench.runtimes.prepare` calls).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.runtimes.base import Prepared, RunRecord, RuntimeUnavailable, first_line, outputs_in_chunks
from compressbench.runtimes.registry import RUNTIMES

MANIFEST = "manifest.json"
DETECTOR_OUTPUTS = ("value", "jacobian", "heatmap")


def deployed_suffixes() -> dict[str, str]:
    """File suffix -> the runtime that runs it (from each runtime's ``artifact_suffix``; ``.pt`` is a model file)."""
    runtimes = RUNTIMES
    suffixes = {name: getattr(runtimes.get(name), "artifact_suffix", ".pt") for name in runtimes}
    return {suffix: name for name, suffix in suffixes.items() if suffix != ".pt"}


def is_deployed(path: str | Path) -> bool:
    """A deployed file by its suffix, or a folder holding an export's manifest."""
    path = Path(path)
    return path.suffix.lower() in deployed_suffixes() or (path.is_dir() and (path / MANIFEST).is_file())


def _read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        main = next(iter(manifest["files"]))
    except (OSError, ValueError, KeyError, StopIteration, TypeError, AttributeError) as exc:
        raise CompressbenchError(f"{folder / MANIFEST} is not an export manifest ({first_line(exc)})") from None
    return {**manifest, "main_file": str(folder / main)}


def _output_names(shapes: list[tuple[int, ...]]) -> list[str]:
    """Names for unnamed outputs (a .pte without its manifest), from their shapes: (N, K, 2) value,
    (N, K, 2, 2) jacobian, (N, K, H, W) heatmap."""
    names = []
    for shape in shapes:
        if len(shape) == 3 and shape[-1] == 2:
            names.append("value")
        elif len(shape) == 4 and tuple(shape[-2:]) == (2, 2):
            names.append("jacobian")
        else:
            names.append("heatmap")
    return names


class DeployedModel(nn.Module):
    """A deployed detector file as a module: ``forward(images)`` returns the output dict, run in the
    file's runtime (in chunks of its static batch). ``runtime``, ``input_shape``, ``outputs`` and
    ``manifest`` (an export's, else None) describe it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        path = Path(path)
        if not path.exists():
            raise CompressbenchError(f"deployed model {path} does not exist")
        self.manifest = _read_manifest(path) if path.is_dir() else None
        self.path = Path(self.manifest["main_file"]) if self.manifest else path
        suffixes = deployed_suffixes()
        if self.path.suffix.lower() not in suffixes:
            raise CompressbenchError(f"{self.path} is not a deployed model file; known: {', '.join(sorted(suffixes))}")
        self.runtime = suffixes[self.path.suffix.lower()]
        backend = RUNTIMES.get(self.runtime)
        backend.version()  # installed? one line if not
        input_shape, outputs = backend.artifact_signature(self.path)
        if self.manifest:
            input_shape, outputs = list(self.manifest["input"]["shape"]), list(self.manifest["outputs"])
        elif None in outputs:
            outputs = _output_names(backend.artifact_output_shapes(self.path))
        if len(input_shape) != 4 or input_shape[1] != 3 or input_shape[2] != input_shape[3]:
            raise CompressbenchError(
                f"{self.path} takes input {input_shape}; a keypoint detector takes (N, 3, S, S) RGB frames"
            )
        if "value" not in outputs:
            raise CompressbenchError(
                f"{self.path} has outputs {', '.join(map(str, outputs))}; a keypoint detector's are {', '.join(DETECTOR_OUTPUTS)}"
            )
        self.input_shape = [int(d) if isinstance(d, int) and d > 0 else 1 for d in input_shape]
        self.outputs = outputs
        self.precision = (self.manifest or {}).get("runtime", {}).get("precision_requested", "fp32")
        self._runner = None
        self._loaded = (0, "")  # (threads, precision) the runner was loaded with
        self._counts: dict | None = None

    def recorded_counts(self) -> dict:
        """Params and MACs as the export counted them on the variant (manifest ``counts``, fvcore's);
        a bare file's from the file: params from the weights its graph holds (.onnx, .xml, .pte), MACs
        of its convolutions and matrix products from the graph's shapes (.onnx, .xml; see
        :mod:`compressbench.runtimes.graph_counts`); anything else unknown (None). ``macs_counter``
        says which. Counted once per opened file."""
        if self._counts is None:
            counts = dict((self.manifest or {}).get("counts") or {})
            counter = "fvcore (recorded at export)" if counts.get("macs") is not None else None
            backend = RUNTIMES.get(self.runtime)
            count_weights = getattr(backend, "artifact_weight_count", None)
            count_macs = getattr(backend, "artifact_mac_count", None)
            if counts.get("params") is None and count_weights is not None:
                counts["params"] = count_weights(self.path)
            if counts.get("macs") is None and count_macs is not None:
                counts["macs"] = count_macs(self.path, self.input_shape)
                counter = f"{self.path.suffix} graph: convolutions and matrix products" if counts["macs"] is not None else None
            self._counts = {"params": counts.get("params"), "macs": counts.get("macs"), "macs_counter": counter}
        return {**self._counts, "size_bytes": module_size(self)}

    @property
    def fixed_input_size(self) -> int:
        """The frame side the file was compiled for (read by :func:`compressbench.models.check_input_size`)."""
        return self.input_shape[-1]

    def runner(self, threads: int | None = None, precision: str | None = None):
        """The file loaded in its runtime with ``threads`` at ``precision`` (default: the export's;
        OpenVINO compiles an IR for a precision hint, the other runtimes run the file as it is)."""
        wanted = (threads or torch.get_num_threads(), precision or self.precision)
        if self._runner is None or wanted != self._loaded:
            backend = RUNTIMES.get(self.runtime)
            self._runner = backend.load_artifact(self.path, wanted[0], wanted[1], self.outputs)
            self._loaded = wanted
        return self._runner

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if tuple(images.shape[1:]) != tuple(self.input_shape[1:]):
            raise CompressbenchError(f"{self.path.name} takes frames {self.input_shape[1:]}, got {list(images.shape[1:])}")
        return outputs_in_chunks(self.runner(), images, self.input_shape[0])

    def prepare_on(self, name: str, batch: torch.Tensor, threads: int, precision: str) -> Prepared:
        """The file itself as the runner on its runtime ``name`` (what :func:`~compressbench.runtimes.prepare`
        returns for a deployed file); its record says what the file holds."""
        if name != self.runtime:
            raise RuntimeUnavailable(f"{self.path.name} runs on {self.runtime}; measure it with --runtime {self.runtime}")
        if precision == "fp32":  # the default: an int8 export computes in int8 whatever is asked, and says so
            precision = self.precision
        if tuple(batch.shape[1:]) != tuple(self.input_shape[1:]):
            raise CompressbenchError(f"{self.path.name} takes frames {self.input_shape[1:]}, got {list(batch.shape[1:])}")
        if len(batch) != self.input_shape[0]:
            batch = batch[torch.arange(self.input_shape[0]) % len(batch)]
        backend = RUNTIMES.get(name)
        runner = self.runner(threads, precision)
        used, fallback, source = backend.artifact_precision(self.path, batch, threads, precision)
        notes = [f"the deployed file {self.path.name}, as it is"]
        record = RunRecord(name, backend.version(), precision, used, threads, fallback, notes, source)
        if name == "openvino":
            from compressbench.runtimes.openvino_runtime import read_kernels  # openvino is optional

            read_kernels(record, runner.compiled)
        graph = self.path.read_bytes() if name != "openvino" else None
        program = backend.read_artifact(self.path) if name == "openvino" else None  # what attribution recompiles
        return Prepared(runner, batch, record, graph=graph, compiled=getattr(runner, "compiled", None), program=program,
                        size_bytes=module_size(self))  # fmt: skip

    def extra_repr(self) -> str:
        return f"{self.path}, runtime={self.runtime}, input={self.input_shape}"


def runtime_for(module: nn.Module, runtime: str) -> str:
    """The runtime a command measures ``module`` on: a deployed file's own where the default
    (``torch``) was asked; anything else as asked (a mismatch is refused by :meth:`DeployedModel.prepare_on`)."""
    return module.runtime if isinstance(module, DeployedModel) and runtime == "torch" else runtime


def module_size(module: DeployedModel) -> int:
    files = [module.path] + ([module.path.with_suffix(".bin")] if module.path.suffix == ".xml" else [])
    return sum(p.stat().st_size for p in files if p.exists())

