"""How a search's budget becomes its recovery schedule.

The search recovers its candidates by successive halving: every head trains ``s`` steps, the better
half ``2s`` more, the better half of those ``4s`` more, down to one, and the survivor goes on while
budget is left. ``s`` is set so that the first round costs ``FIRST_ROUND_SHARE`` of the budget left
after screening (or, with ``first_share=None``, so that every halving round costs the same: Jamieson
and Talwalkar's successive halving, which measured worse here; see ``FIRST_ROUND_SHARE``).
Training time does not depend on the weights, so every head's cost per step is measured on its
untrained skeleton (:func:`compressbench.distillation.finetune.step_cost`) before any training.

Halving keeps the better half by validation AKD, which favours slow heads that start closer. Once
two rounds have drawn a head's learning curve, :func:`steps_to_reach` extrapolates the steps it
needs to the bound, and the search bets the rest of the budget on the fastest head that is predicted
to get there with ``BET_MARGIN`` to spare (freeze-thaw style early stopping on learning curves, kept
to a two-point power law).

A fixed first round (100 steps) does not follow the budget: for the default candidates on the AMD
EPYC the share below chooses 100 steps in 20 minutes (measured) and 300 in an hour (computed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from compressbench.errors import CompressbenchError

STEP_UNIT = 50  # first-round steps are a multiple of this: reruns on one machine land on the same schedule
MIN_FIRST_STEPS = 50  # below this a round's validation AKD says little about where a head is going
# The first round's share of the budget. Successive halving gives every round an equal share (a third
# with 7 heads); in 20 minutes on the AMD EPYC that lost: its 250-step first round left the fastest
# head 3,700 steps and it missed 2 px held-out (benchmarks/results/amd-epyc-avx512/search-20m-equal-rounds.json),
# where a 100-step round left it 5,800 and it made it (search-20m-min-steps-100.json). The bound
# rewards the fastest head's last rounds, so the first round gets this share and the rest goes on.
FIRST_ROUND_SHARE = 0.15


# A bet on a faster head must leave this much slack: its steps to the bound are extrapolated, and
# recovery curves flatten, so the prediction errs short.
BET_MARGIN = 1.5


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """More recover steps a head needs until its validation AKD reaches ``target``, extrapolated from
    its last two points of ``curve`` ((total steps, validation AKD), in order) by the power law
    AKD ~ steps^-b through them: recovery curves are close to straight on log-log axes, and the last
    segment is the flattest so far. 0 when it is there already; None with fewer than two points or
    when its last round did not help (b <= 0: no power law goes down)."""
    if curve and curve[-1][1] <= target:
        return 0
    if len(curve) < 2:
        return None
    (s0, a0), (s1, a1) = curve[-2], curve[-1]
    if s1 <= s0 or a1 >= a0 or min(a0, a1, target) <= 0:
        return None
    slope = math.log(a0 / a1) / math.log(s1 / s0)
    return max(STEP_UNIT, math.ceil(s1 * (a1 / target) ** (1 / slope) - s1))


def halving_sizes(heads: int) -> list[int]:
    """How many heads each round trains when the better half goes on: 7 -> [7, 3, 1]."""
    if heads < 1:
        raise CompressbenchError(f"a schedule needs at least one head to train, got {heads}")
    sizes = [heads]
    while sizes[-1] > 1:
        sizes.append(max(1, sizes[-1] // 2))
    return sizes


@dataclass(frozen=True)
class Schedule:
    """The recovery schedule a search runs: its first round's steps (each later round doubles them)
    and how they were chosen (``set_by``: ``"budget"`` or ``"--min-steps"``), with the plan behind a
    budget-set one: the heads per round, the seconds per step the plan assumed (the mean of the
    heads'), the fixed seconds (labelling the pool) and the seconds the plan predicts for its rounds."""

    first_steps: int
    set_by: str
    rounds: tuple[int, ...] = ()
    step_s: float | None = None
    fixed_s: float | None = None
    predicted_s: float | None = None

    def to_json(self) -> dict:
        return {
            "first_steps": self.first_steps, "set_by": self.set_by, "rounds": list(self.rounds),
            "step_s": self.step_s, "fixed_s": self.fixed_s, "predicted_s": self.predicted_s,
        }  # fmt: skip


def budget_schedule(
    budget_s: float, step_s: list[float], fixed_s: float = 0.0, validation_s: float = 0.0, max_steps: int | None = None,
    val_every: int = 100, first_share: float | None = FIRST_ROUND_SHARE,
) -> Schedule:
    """The first-round steps for ``len(step_s)`` heads (``step_s``: each head's seconds per step;
    ``fixed_s``: paid once; ``validation_s``: per validation, one every ``val_every`` steps) that
    spend ``first_share`` of ``budget_s`` less ``fixed_s`` on the first round, or (``first_share``
    None) all of it over the halving rounds, later rounds assumed to cost the heads' mean per step
    (which heads survive is not known yet). ``predicted_s`` is what the halving rounds cost. Rounded to
    ``STEP_UNIT`` steps, at least ``MIN_FIRST_STEPS``, and small enough that one head trained
    through every round stays within ``max_steps``."""
    if budget_s <= 0:
        raise CompressbenchError(f"a schedule needs a positive budget, got {budget_s}")
    if not step_s or any(not (math.isfinite(s) and s > 0) for s in step_s):
        raise CompressbenchError(f"every head's seconds per step must be positive, got {step_s}")
    sizes = halving_sizes(len(step_s))
    mean = sum(step_s) / len(step_s)
    per_step = mean + validation_s / val_every
    # first round: every head at its own cost; later rounds at the mean; round r trains s * 2**r steps
    first_round = sum(step_s) + validation_s / val_every * len(step_s)
    weight = first_round + per_step * sum(n * 2**r for r, n in enumerate(sizes) if r)
    if first_share is None:
        affordable = (budget_s - fixed_s) / weight
    elif 0 < first_share <= 1:
        affordable = first_share * (budget_s - fixed_s) / first_round
    else:
        raise CompressbenchError(f"the first round's share of the budget must be in (0, 1], got {first_share}")
    steps = round(affordable / STEP_UNIT) * STEP_UNIT
    if max_steps is not None:
        steps = min(steps, max_steps // (2 ** len(sizes) - 1) // STEP_UNIT * STEP_UNIT)
    steps = max(steps, MIN_FIRST_STEPS)
    if max_steps is not None:
        steps = min(steps, max_steps)
    predicted = fixed_s + steps * weight
    return Schedule(steps, "budget", tuple(sizes), round(mean, 4), round(fixed_s, 2), round(predicted, 1))


__all__ = [
    "BET_MARGIN", "FIRST_ROUND_SHARE", "MIN_FIRST_STEPS", "STEP_UNIT", "Schedule", "budget_schedule", "halving_sizes", "steps_to_reach",
]  # fmt: skip
