"""The fine-tuning loop's lr warm-up, by hand."""

from __future__ import annotations

import pytest

from compressbench.distillation.finetune import warmup_factor


@pytest.mark.parametrize(
    "step, warmup, factor",
    [(0, 4, 0.25), (1, 4, 0.5), (2, 4, 0.75), (3, 4, 1.0), (10, 4, 1.0), (0, 0, 1.0), (0, 1, 1.0)],
)
def test_warmup_rises_linearly_to_the_schedule(step, warmup, factor):
    assert warmup_factor(step, warmup) == factor
