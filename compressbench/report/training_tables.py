"""The table of a training run: its validation history against the teacher."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from compressbench.report.render import Section


def training_section(training: dict, saved: Path):
    """The validation history (AKD against the teacher on held-out frames) as a table."""
    stopped = " (stopped early)" if training["stopped_early"] else ""
    best = training["best_val_akd_px"]
    best_text = f"best validation AKD {best:.3f} px at step {training['best_step']} (the weights saved)" if best is not None else "no finite validation AKD"
    notes = [f"{training['steps']} steps in {training['seconds']:.0f} s{stopped}; {best_text}", f"student: {saved}"]
    return Section("Distillation (validation against the teacher)", pd.DataFrame(training["history"]), notes)
