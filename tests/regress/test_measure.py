"""What a gate measurement times: eager fp32 as the plain call it always was, other runtimes prepared once."""

from __future__ import annotations

import pytest
import torch

from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher
from compressbench.regress import CheckSettings
from compressbench.regress.measure import example_batch, measure_relative, timed_call

SETTINGS = CheckSettings(input_size=64, repeats=2, warmup=1, threads=1)


@pytest.fixture(scope="module")
def small_teacher():
    torch.manual_seed(0)
    return build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)).eval()


def test_eager_fp32_is_the_plain_call_with_grad_mode_on(small_teacher):
    """Baselines recorded before runtimes were recorded timed ``module(example)`` with grad mode on."""
    call, record = timed_call(small_teacher, SETTINGS)
    out = call()
    assert out["value"].requires_grad and not torch.is_inference(out["value"])
    assert (record.runtime, record.precision_requested, record.threads) == ("torch", "fp32", 1)
    torch.testing.assert_close(out["value"], small_teacher(example_batch(SETTINGS))["value"], atol=0, rtol=0)


def test_another_runtime_is_prepared_once_and_timed_through_its_runner(small_teacher):
    call, record = timed_call(small_teacher, SETTINGS, "onnxruntime", "fp32")
    assert (record.runtime, record.precision_used) == ("onnxruntime", "fp32")
    assert call()["value"].shape == (1, 10, 2)
    samples = measure_relative(small_teacher, SETTINGS, call=call)
    assert len(samples.model_ms) == len(samples.ruler_ms) == 2


def test_a_model_the_runtime_cannot_take_is_a_usage_error_naming_it(small_teacher):
    with pytest.raises(
        CompressbenchError, match="^small cannot be measured on onnxruntime bf16: onnxruntime has no bf16 CPU kernels"
    ):
        timed_call(small_teacher, SETTINGS, "onnxruntime", "bf16", label="small")
