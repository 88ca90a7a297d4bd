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


def test_step_cost_times_a_copy_and_leaves_the_student_as_it_was():
    import torch

    from compressbench.distillation.finetune import FinetuneSettings, step_cost
    from tests.compression.test_recover import calibrated_teacher

    teacher = calibrated_teacher()
    student = calibrated_teacher()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cost = step_cost(student, teacher, FinetuneSettings(batch=4, pool=16, size=64, progress=False), images, val_frames=8, repeats=2)
    assert cost.step_s > 0 and cost.validation_s > 0
    assert cost.pool_s > 0  # 16 frames labelled 4 at a time: four teacher forwards
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert student.training == calibrated_teacher().training
    fresh = step_cost(student, teacher, FinetuneSettings(batch=4, pool=0, size=64, progress=False), images, val_frames=8, repeats=2)
    assert fresh.pool_s == 0.0  # no pool: every batch is labelled in its step


def test_step_cost_needs_one_batch_of_frames():
    import torch

    from compressbench.distillation.finetune import FinetuneSettings, step_cost
    from compressbench.errors import CompressbenchError
    from tests.compression.test_recover import calibrated_teacher

    teacher = calibrated_teacher()
    with pytest.raises(CompressbenchError, match="step_cost needs 16 frames"):
        step_cost(teacher, teacher, FinetuneSettings(batch=16, pool=16, size=64), torch.rand(4, 3, 64, 64))
