"""Notes for a comparison record after measuring (a new record carries them): what a recover stage
did, and for a row whose AKD exceeds the bound, the exact command that would fine-tune it back (its
chain with ``recover`` inserted after the structural stages), so a user never has to guess the fix."""

from __future__ import annotations

from compressbench.compression import METHODS, get_method
from compressbench.errors import CompressbenchError
from compressbench.metrics import within_bound
from compressbench.records import ComparisonRecord, ComparisonRow

DEFAULT_MAX_AKD = 1.0
DEFAULT_RECOVER_STEPS = 300
SYNTHETIC = "synthetic"


def check_bound(max_akd: float) -> float:
    if not max_akd > 0:
        raise CompressbenchError(f"--max-akd must be a positive number of pixels, got {max_akd}")
    return float(max_akd)


def with_recover(stages: list[dict], steps: int = DEFAULT_RECOVER_STEPS) -> list[dict] | None:
    """The stages (``{"method", "options"}``) with a recover stage of ``steps`` steps after the last
    structural one, or before the first int8 one when nothing is structural; a recover already there
    gets four times its steps. None when recovery cannot help (nothing structural, nothing to train)."""
    stages = [{"method": s["method"], "options": dict(s.get("options") or {})} for s in stages]
    structural = [i for i, s in enumerate(stages) if get_method(s["method"]).structural]
    if not structural:
        return None
    after = structural[-1] + 1
    existing = next((i for i in range(after, len(stages)) if stages[i]["method"] == "recover"), None)
    if existing is not None:
        options = stages[existing]["options"]
        options["steps"] = 4 * int(options.get("steps") or DEFAULT_RECOVER_STEPS)
        return stages
    recover = get_method("recover").resolve({"steps": steps})
    return stages[:after] + [{"method": "recover", "options": recover}] + stages[after:]


def _non_default(stage: dict) -> dict:
    method = get_method(stage["method"])
    defaults = method.resolve({})
    given = stage.get("options") or {}
    chosen = {k: v for k, v in given.items() if k in defaults and v != defaults[k]}
    if stage["method"] == "recover":
        chosen = {"steps": given.get("steps", defaults["steps"]), **chosen}
    return chosen


def model_arguments(model: str = "teacher", **flags) -> str:
    """``--model M`` (left out for the default teacher) followed by ``--flag value`` for every
    flag given (e.g. ``config``, ``checkpoint``, ``weights``): how a command names its model."""
    parts = [] if model == "teacher" else [f"--model {model}"]
    parts += [f"--{name.replace('_', '-')} {value}" for name, value in flags.items() if value is not None]
    return " ".join(parts)


def compress_command(stages: list[dict], model_args: str = "", data: str = SYNTHETIC, seed: int = 0, size: int = 256) -> str:
    """The ``compressbench compress`` line that builds ``stages`` (options that differ from the
    defaults as ``--set``; a method that occurs twice is named by its 1-based position).
    ``model_args`` names the model (see :func:`model_arguments`)."""
    names = [s["method"] for s in stages]
    parts = ["compressbench compress"]
    if model_args:
        parts.append(model_args)
    parts.append(f"--method {','.join(names)}")
    for index, stage in enumerate(stages, start=1):
        target = stage["method"] if names.count(stage["method"]) == 1 else str(index)
        parts += [f"--set {target}.{key}={_value(value)}" for key, value in _non_default(stage).items()]
    if data != SYNTHETIC:
        parts.append(f"--data {data}")
    if size != 256:
        parts.append(f"--input-size {size}")
    if seed:
        parts.append(f"--seed {seed}")
    return " ".join(parts)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def recover_note(report: dict) -> str:
    curve = report.get("validation") or []
    points = ", ".join(f"{row['val_akd_px']:.3g}@{row['step']}" for row in curve)
    return (
        f"recover: {report.get('steps_run')} steps in {report.get('seconds', 0.0):.0f} s on {report.get('device', 'cpu')}, "
        f"validation AKD {report.get('val_akd_before_px', float('nan')):.3g} -> {report.get('val_akd_after_px') or float('nan'):.3g} px "
        f"(px@step: {points})"
    )


def annotate(record: ComparisonRecord, max_akd: float = DEFAULT_MAX_AKD, model_args: str | None = None) -> ComparisonRecord:
    """``record`` (a compress record: ``rows`` with the teacher first, one row per stage of
    ``stages``) with its notes, as a new record: every row that ends in a recover stage says what the
    recovery did; every row above ``max_akd`` that recovery could help names the command to try.
    ``model_args`` is how the command names the model (default: ``--model`` and the record's model)."""
    check_bound(max_akd)
    stages = list(record.stages or ())
    model_args = model_args if model_args is not None else model_arguments(record.model or "teacher")
    data, seed = record.data or SYNTHETIC, int(record.seed or 0)
    size = int(record.env.get("image_size") or 256)
    first = 2 if record.reference else 1  # rows: [reference,] the model, then one per stage
    added = {
        row.variant: _row_notes(row, stages[: index + 1], max_akd, model_args, data, seed, size)
        for index, row in enumerate(record.rows[first:][: len(stages)])
    }  # fmt: skip
    return record.with_row_notes(added)


def annotate_variants(
    record: ComparisonRecord, stages_by_variant: dict[str, list[dict]], model_args_by_variant: dict[str, str],
    max_akd: float = DEFAULT_MAX_AKD, data: str = SYNTHETIC, seed: int = 0,
) -> ComparisonRecord:
    """:func:`annotate` for a record whose rows are independent variants (a bench suite): each row's
    own chain (``stages_by_variant``) and model (``model_args_by_variant``) name the command."""
    check_bound(max_akd)
    size = int(record.env.get("image_size") or 256)
    added = {
        row.variant: _row_notes(row, stages, max_akd, model_args_by_variant.get(row.variant, ""), data, seed, size)
        for row in record.rows[1:]
        if (stages := stages_by_variant.get(row.variant) or [])
    }  # fmt: skip
    return record.with_row_notes(added)


def _row_notes(row: ComparisonRow, stages: list[dict], max_akd: float, model_args: str, data: str, seed: int, size: int) -> list[str]:
    """What a row ending in ``stages`` should say: the recovery it had, the command that would recover it."""
    notes = []
    if stages[-1]["method"] == "recover":
        notes.append(recover_note(stages[-1].get("report") or {}))
    akd = row.akd_px
    replayable = all(stage["method"] in METHODS for stage in stages)  # a training record (distill) is no command
    if akd is not None and not within_bound(akd, max_akd) and replayable:
        fixed = with_recover(stages)
        if fixed is not None:
            command = compress_command(fixed, model_args, data, seed, size)
            notes.append(f"AKD {akd:.3g} px > {max_akd:g} px: fine-tune it back with `{command}`")
    return notes


__all__ = [
    "DEFAULT_MAX_AKD", "annotate", "annotate_variants", "check_bound", "compress_command", "model_arguments", "with_recover",
]  # fmt: skip
