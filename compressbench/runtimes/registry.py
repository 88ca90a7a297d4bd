"""The registry of runtimes (``--runtime``) and :func:`prepare`, the one way to get a runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.registry import Registry
from compressbench.runtimes.base import Prepared, check_precision
from compressbench.runtimes.nncf_int8 import METHOD as NNCF
from compressbench.runtimes.qdq import CALIBRATION_METHODS

INT8_METHODS = (*CALIBRATION_METHODS, NNCF)  # QDQ calibrations (any ONNX runtime), and OpenVINO's own NNCF


class Runtime(Protocol):
    name: str
    summary: str

    def version(self) -> str:
        """The installed version; raises RuntimeMissing when the package is absent."""

    def prepare(
        self,
        module: nn.Module,
        batch: torch.Tensor,
        threads: int,
        precision: str,
        calibration: torch.Tensor | None,
        calibration_method: str | None = None,
    ) -> Prepared:
        """A runner for ``module`` on ``batch``; RuntimeUnavailable when this model/precision cannot run."""

    # The file a user ships (``compressbench export``): ``artifact_suffix`` names its main file.
    artifact_suffix: str

    def write_artifact(self, prepared: Prepared, folder: Path) -> list[Path]:
        """Write the program ``prepared`` runs into ``folder``: the files, main file first;
        RuntimeUnavailable where it has no such file."""

    def load_artifact(self, path: Path, threads: int, precision: str, outputs: list[str]) -> Callable:
        """A runner (images -> output dict) of a file :meth:`write_artifact` wrote, in a fresh
        session of this runtime, compiled as the measurement compiled it."""


RUNTIMES: Registry[Runtime] = Registry("runtime")


def register_runtime(cls):
    RUNTIMES.register(cls.name, cls())
    return cls


def get_runtime(name: str) -> Runtime:
    return RUNTIMES.get(name)


def check_runtime(name: str, precision: str = "fp32") -> Runtime:
    """Validate a runtime name (unknown: lists the known ones), that it is installed, and the precision,
    before any long work starts."""
    runtime = RUNTIMES.get(name)
    check_precision(precision)
    runtime.version()
    return runtime


def prepare(
    name: str,
    module: nn.Module,
    batch: torch.Tensor,
    threads: int | None = None,
    precision: str = "fp32",
    calibration: torch.Tensor | None = None,
    calibration_method: str | None = None,
) -> Prepared:
    """Compile/wrap ``module`` for runtime ``name`` at ``precision`` with ``threads`` threads
    (default: torch's current count). ``calibration`` frames are used by int8 (default: synthetic
    training-split frames); ``calibration_method`` picks the QDQ ranges (:mod:`.qdq`), or ``nncf``:
    OpenVINO's own int8 path (:mod:`.nncf_int8`, openvino only)."""
    runtime = check_runtime(name, precision)
    if calibration_method is not None and calibration_method not in INT8_METHODS:
        known = ", ".join(INT8_METHODS)
        raise CompressbenchError(f"unknown calibration method {calibration_method!r}; known: {known}")
    threads = threads or torch.get_num_threads()
    prepare_on = getattr(module, "prepare_on", None)  # a deployed file (runtimes.deployed): the file itself
    if callable(prepare_on):
        return prepare_on(name, batch, threads, precision)
    return runtime.prepare(module.eval(), batch, threads, precision, calibration, calibration_method)
