"""The budget-set recovery schedule, by hand."""

from __future__ import annotations

import pytest

from compressbench.errors import CompressbenchError
from compressbench.search_schedule import STEP_UNIT, budget_schedule, halving_sizes, steps_to_reach


@pytest.mark.parametrize("heads, sizes", [(1, [1]), (2, [2, 1]), (3, [3, 1]), (7, [7, 3, 1]), (8, [8, 4, 2, 1])])
def test_halving_keeps_the_better_half_down_to_one(heads, sizes):
    assert halving_sizes(heads) == sizes


def test_by_default_the_first_round_costs_its_share_of_the_budget():
    # 4 heads at 0.2 s/step: 0.8 s per first-round step; 0.15 of (1000 - 40) s is 144 s -> 180 steps -> 200
    schedule = budget_schedule(1000.0, [0.2] * 4, fixed_s=40.0)
    assert (schedule.first_steps, schedule.rounds, schedule.set_by) == (200, (4, 2, 1), "budget")
    assert schedule.predicted_s == 40.0 + 200 * 2.4  # the halving rounds at 200, 400, 800 steps
    # the 20-minute search's heads (search-20m-equal-rounds.json: 7 at a mean 0.2258 s per step, 1,107 s
    # left, pool 14.28 s; its predicted 1,031.3 s for 250 steps gives 1.35 s per validation)
    measured = dict(fixed_s=14.28, validation_s=1.35)
    assert budget_schedule(1107.0, [0.2258] * 7, **measured).first_steps == 100  # 97.8
    assert budget_schedule(1107.0, [0.2258] * 7, **measured, first_share=None).first_steps == 250  # 268.6: what that run ran


def test_successive_halving_gives_every_round_the_same_share():
    # 4 heads at 0.2 s/step: rounds of 4, 2, 1 heads at s, 2s, 4s steps cost 0.8 s + 2*2*0.2 + 4*0.2 = 2.4 s per first-round step
    schedule = budget_schedule(1000.0, [0.2] * 4, fixed_s=40.0, first_share=None)
    assert (schedule.first_steps, schedule.rounds, schedule.set_by) == (400, (4, 2, 1), "budget")
    assert schedule.predicted_s == 1000.0


def test_the_first_round_pays_each_heads_own_cost_and_later_rounds_the_mean():
    # heads at 0.1 and 0.3 s/step: first round 0.4 s per step, the survivor's round 2 * 0.2 s: 0.8 s per first-round step
    assert budget_schedule(100.0, [0.1, 0.3], first_share=None).first_steps == 100  # 125: 2.5 units, rounded to even
    # one validation (1 s) every 100 steps: 0.01 s more per step of every head: (0.4 + 0.02 + 2 * 0.21) = 0.84 s -> 119 -> 100
    assert budget_schedule(100.0, [0.1, 0.3], validation_s=1.0, first_share=None).first_steps == 100
    assert budget_schedule(130.0, [0.1, 0.3], validation_s=1.0, first_share=None).first_steps == 150  # 154.8 to the nearest 50
    # the first round's share: 0.15 * 300 s over 0.42 s per step = 107 -> 100
    assert budget_schedule(300.0, [0.1, 0.3], validation_s=1.0).first_steps == 100


def test_the_first_round_is_rounded_floored_and_capped():
    assert budget_schedule(1000.0, [0.2] * 4, fixed_s=40.0, max_steps=1000, first_share=None).first_steps == 100  # 1000 // 7 = 142 -> 100
    assert budget_schedule(5.0, [0.2] * 4).first_steps == 50  # affords 2 steps: the floor
    assert budget_schedule(5.0, [0.2] * 4, max_steps=20).first_steps == 20  # never above --max-steps


@pytest.mark.parametrize(
    "budget, steps, extra, message",
    [(0.0, [0.1], {}, "positive budget"), (10.0, [], {}, "seconds per step must be positive"),
     (10.0, [0.1, 0.0], {}, "must be positive"), (10.0, [0.1], {"first_share": 1.5}, r"share of the budget must be in \(0, 1\]")],
)
def test_bad_plans_are_refused(budget, steps, extra, message):
    with pytest.raises(CompressbenchError, match=message):
        budget_schedule(budget, steps, **extra)


def test_no_heads_no_schedule():
    with pytest.raises(CompressbenchError, match="at least one head"):
        halving_sizes(0)


def test_the_steps_to_the_bound_follow_the_power_law_through_the_last_two_points():
    # 4.0 px at 100 steps, 2.0 at 400: AKD ~ steps^-0.5, so 1.0 px at 1,600 steps: 1,200 more
    assert steps_to_reach([(100, 4.0), (400, 2.0)], 1.0) == 1200
    # only the last segment counts (curves flatten): 300 -> 700 steps, 2.12 -> 1.47 px, b = 0.432;
    # 0.95 px at 700 * (1.47 / 0.95) ** (1 / 0.4321) = 1,922.3 steps: 1,223 more
    assert steps_to_reach([(100, 9.0), (300, 2.12), (700, 1.47)], 0.95) == 1223
    # 2.0 -> 1.0 px over 100 -> 400 steps; 0.99 px at 400 / 0.99 ** 2 = 408.1: 9 steps, at least one unit
    assert steps_to_reach([(100, 2.0), (400, 1.0)], 0.99) == STEP_UNIT
    assert steps_to_reach([(100, 0.9)], 1.0) == 0  # there already
    assert steps_to_reach([(100, 2.0)], 1.0) is None  # one point draws no curve
    assert steps_to_reach([(100, 2.0), (300, 2.0)], 1.0) is None  # a round that did not help: no power law goes down
    assert steps_to_reach([], 1.0) is None
