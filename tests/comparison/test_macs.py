import copy

import pytest
import torch

from compressbench.comparison.macs import row_macs, stage_key
from compressbench.compression import get_method
from compressbench.profiling.counting import count_macs
from compressbench.provenance import Base, Provenance, Stage, derive

from ..standins import FRAME_SIZE, context, small_teacher

EXAMPLE = torch.zeros(1, 3, FRAME_SIZE, FRAME_SIZE)


@pytest.fixture(scope="module")
def pruned_then_quantized():
    options = [get_method("prune").resolve({"ratio": 0.5}), get_method("quantize").resolve({"calib": 2})]
    return derive(small_teacher(), ["prune", "quantize"], options, context())


def test_int8_macs_are_those_of_the_rebuilt_float_prefix(pruned_then_quantized):
    pruned, final = pruned_then_quantized
    assert final.int8 and [s.method for s in final.provenance.float_prefix().stages] == ["prune"]
    macs, note = row_macs(final.module, final, EXAMPLE, {})  # no pruned row needed: it is rebuilt
    assert macs == count_macs(pruned.module, EXAMPLE) < count_macs(small_teacher(), EXAMPLE)
    assert note == "MACs of the float model before quantization (stages: prune), run in int8"


def test_without_a_base_an_earlier_row_with_the_same_prefix_is_used(pruned_then_quantized):
    pruned, final = pruned_then_quantized
    orphan = copy.copy(final)
    orphan.provenance = Provenance(Base(), final.stages)
    earlier = {stage_key(pruned.stages): ("pruned-row", 1234)}
    assert row_macs(final.module, orphan, EXAMPLE, earlier) == (
        1234,
        "MACs of pruned-row (the float model before quantization), run in int8",
    )
    macs, note = row_macs(final.module, orphan, EXAMPLE, {})
    assert macs is None and "cannot be rebuilt" in note


def test_float_rows_are_counted_directly(pruned_then_quantized):
    pruned, _ = pruned_then_quantized
    assert row_macs(pruned.module, pruned, EXAMPLE, {}) == (count_macs(pruned.module, EXAMPLE), None)


def test_a_distill_record_before_int8_stages_counts_as_float(pruned_then_quantized):
    pruned, final = pruned_then_quantized
    student = copy.copy(final)
    student.provenance = Provenance(final.provenance.base, (Stage("distill", {"student": "x"}), *final.stages))
    assert [s.method for s in student.provenance.float_prefix().stages] == ["distill", "prune"]
    macs, note = row_macs(final.module, student, EXAMPLE, {})
    assert macs == count_macs(pruned.module, EXAMPLE)
    assert note == "MACs of the float model before quantization (stages: distill,prune), run in int8"
