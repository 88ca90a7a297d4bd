"""Fixtures: the reduced teacher, frames, and an identical copy as a variant (int8 variants: tests/conftest.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from compressbench.provenance import Variant, provenance_of

from ..standins import FRAME_SIZE, small_teacher, stage


@pytest.fixture(scope="module")
def teacher():
    return small_teacher()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(3, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def copy_variant(teacher):
    return Variant("copy", copy.deepcopy(teacher), provenance_of(teacher).then(stage("exact")))
