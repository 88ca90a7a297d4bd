"""The budget-set recovery schedule, by hand."""

from __future__ import annotations

import pytest

from compressbench.errors import CompressbenchError
from compressbench.search_schedule import budget_schedule, halving_sizes


@pytest.mark.parametrize("heads, sizes", [(1, [1]), (2, [2, 1]), (3, [3, 1]), (7, [7, 3, 1]), (8, [8, 4, 2, 1])])
def test_halving_keeps_the_better_half_down_to_one(heads, sizes):
    assert halving_sizes(heads) == sizes


def test_every_round_costs_the_same_share_of_the_budget():
    # 4 heads at 0.2 s/step: rounds of 4, 2, 1 heads at s, 2s, 4s steps cost 0.8 s + 2*2*0.2 + 4*0.2 = 2.4 s per first-round step
    schedule = budget_schedule(1000.0, [0.2] * 4, fixed_s=40.0)
    assert (schedule.first_steps, schedule.rounds, schedule.set_by) == (400, (4, 2, 1), "budget")
    assert schedule.predicted_s == 1000.0


def test_the_first_round_pays_each_heads_own_cost_and_later_rounds_the_mean():
    # heads at 0.1 and 0.3 s/step: first round 0.4 s per step, the survivor's round 2 * 0.2 s: 0.8 s per first-round step
    assert budget_schedule(100.0, [0.1, 0.3]).first_steps == 100
    # one validation (1 s) every 100 steps: 0.01 s more per step of every head: (0.4 + 0.02 + 2 * 0.21) = 0.84 s -> 119 -> 100
    assert budget_schedule(100.0, [0.1, 0.3], validation_s=1.0).first_steps == 100
    assert budget_schedule(130.0, [0.1, 0.3], validation_s=1.0).first_steps == 150  # 154.8 rounded down to 50s


def test_the_first_round_is_rounded_floored_and_capped():
    assert budget_schedule(1000.0, [0.2] * 4, fixed_s=40.0, max_steps=1000).first_steps == 100  # 1000 // 7 = 142 -> 100
    assert budget_schedule(5.0, [0.2] * 4).first_steps == 50  # affords 2 steps: the floor
    assert budget_schedule(5.0, [0.2] * 4, max_steps=20).first_steps == 20  # never above --max-steps


@pytest.mark.parametrize(
    "budget, steps, message",
    [(0.0, [0.1], "positive budget"), (10.0, [], "seconds per step must be positive"), (10.0, [0.1, 0.0], "must be positive")],
)
def test_bad_plans_are_refused(budget, steps, message):
    with pytest.raises(CompressbenchError, match=message):
        budget_schedule(budget, steps)


def test_no_heads_no_schedule():
    with pytest.raises(CompressbenchError, match="at least one head"):
        halving_sizes(0)
