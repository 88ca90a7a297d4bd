"""Hints: rows above the AKD bound name the command that recovers them; rows within it say nothing."""

from __future__ import annotations

import pytest

from compressbench.comparison.hints import annotate, annotate_variants, compress_command, model_arguments, with_recover
from compressbench.compression import get_method
from compressbench.errors import CompressbenchError
from compressbench.records import ComparisonRecord, ComparisonRow


def stage(method: str, report: dict | None = None, **options) -> dict:
    return {"method": method, "options": get_method(method).resolve(options), "report": report or {}}


def row(variant: str, akd: float) -> ComparisonRow:
    return ComparisonRow(variant, "none", 1, None, False, 0.1, None, akd_px=akd)


def record(stages: list[dict], akds: list[float], **extra) -> ComparisonRecord:
    rows = [row("teacher", 0.0)]
    names = []
    for s, akd in zip(stages, akds):
        names.append(s["method"])
        rows.append(row("teacher+" + "+".join(names), akd))
    return ComparisonRecord(rows=tuple(rows), modules=(), env={}, model="teacher", data="synthetic", seed=0,
                            stages=tuple(stages), **extra)  # fmt: skip


def test_rows_above_the_bound_name_the_chain_with_recover_after_the_structural_stages():
    rec = annotate(record([stage("exact"), stage("prune", ratio=0.7), stage("quantize")], [0.0, 47.0, 48.9]), 1.0)
    exact, pruned, quantized = rec["rows"][1:]
    assert exact["note"] is None
    assert pruned["note"] == (
        "AKD 47 px > 1 px: fine-tune it back with "
        "`compressbench compress --method exact,prune,recover --set prune.ratio=0.7 --set recover.steps=300`"
    )
    assert quantized["note"].endswith(
        "`compressbench compress --method exact,prune,recover,quantize --set prune.ratio=0.7 --set recover.steps=300`"
    )
    assert rec["notes"] == [f"teacher+exact+prune: {pruned['note']}", f"teacher+exact+prune+quantize: {quantized['note']}"]


def test_rows_within_the_bound_and_rows_recovery_cannot_help_get_no_hint():
    rec = annotate(record([stage("prune"), stage("quantize")], [0.9, 1.0]), 1.0)
    assert [row["note"] for row in rec["rows"]] == [None, None, None]
    assert annotate(record([stage("quantize")], [2.5]), 1.0)["rows"][1]["note"] is None  # nothing structural to recover


def test_a_recover_row_reports_its_curve_and_above_the_bound_asks_for_four_times_the_steps():
    report = {
        "steps_run": 300, "seconds": 88.0, "device": "cpu", "val_akd_before_px": 20.9, "val_akd_after_px": 2.02,
        "validation": [{"step": 0, "val_akd_px": 20.9}, {"step": 100, "val_akd_px": 2.92}, {"step": 300, "val_akd_px": 2.02}],
    }  # fmt: skip
    rec = annotate(record([stage("prune"), stage("recover", report)], [20.9, 2.4]), 1.0, "--model my.pt")
    note = rec["rows"][2]["note"]
    assert note.startswith("recover: 300 steps in 88 s on cpu, validation AKD 20.9 -> 2.02 px (px@step: 20.9@0, 2.92@100, 2.02@300)")
    assert note.endswith("`compressbench compress --model my.pt --method prune,recover --set recover.steps=1200`")


def test_commands_name_repeated_methods_by_position_and_carry_data_and_seed():
    stages = with_recover([stage("prune", ratio=0.3), stage("prune", importance="l1")])
    assert [s["method"] for s in stages] == ["prune", "prune", "recover"]
    assert compress_command(stages, data="clips/", seed=3, size=128) == (
        "compressbench compress --method prune,prune,recover --set 1.ratio=0.3 --set 2.importance=l1 "
        "--set recover.steps=300 --data clips/ --input-size 128 --seed 3"
    )
    assert model_arguments("teacher", config="r.yaml", checkpoint=None) == "--config r.yaml"
    assert model_arguments("my.pt") == "--model my.pt"


def test_suite_rows_are_annotated_from_their_own_chain_and_model_and_distilled_rows_get_no_command():
    measured = ComparisonRecord(
        rows=(row("teacher", 0.0), row("p5", 20.9), row("student", 9.0), row("q", 0.2)), modules=(), env={"image_size": 128}
    )
    stages = {"p5": [stage("prune", ratio=0.7)], "student": [{"method": "distill", "options": {}, "report": {}}], "q": [stage("quantize")]}
    rec = annotate_variants(measured, stages, {"p5": "--model p.pt", "student": "--model s.pt", "q": ""}, data="clips/", seed=2)
    assert [row["note"] for row in rec["rows"]] == [
        None,
        "AKD 20.9 px > 1 px: fine-tune it back with `compressbench compress --model p.pt --method prune,recover "
        "--set prune.ratio=0.7 --set recover.steps=300 --data clips/ --input-size 128 --seed 2`",
        None,
        None,
    ]
    assert rec["notes"] == [f"p5: {rec['rows'][1]['note']}"]


@pytest.mark.parametrize("bound", [0, -1.0])
def test_a_non_positive_bound_is_refused(bound):
    with pytest.raises(CompressbenchError, match="--max-akd must be a positive number"):
        annotate(record([stage("prune")], [3.0]), bound)
