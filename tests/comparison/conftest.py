"""Fixtures: the reduced teacher, frames, and variants: an identical copy, fx and onnxruntime int8."""

from __future__ import annotations

import copy

import pytest
import torch

from compressbench.compression import Variant

from .standins import FRAME_SIZE, SMALL_BASE, quantized, small_teacher, stage


@pytest.fixture(scope="module")
def teacher():
    return small_teacher()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(3, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def copy_variant(teacher):
    return Variant("copy", copy.deepcopy(teacher), [stage("exact")], False, SMALL_BASE)


@pytest.fixture(scope="session")
def int8_variant():
    """quantize backend=fx: torch.ao int8 modules with packed weights, BatchNorm folded."""
    return quantized({"backend": "fx", "calib": 2}, "int8")


@pytest.fixture(scope="session")
def ort_variant():
    """quantize backend=onnxruntime: the parts run as int8 ONNX graphs."""
    return quantized({"backend": "onnxruntime", "calib": 2}, "ort")
