"""``models`` says which registered models are untrained; ``evaluate`` notes it beside their AKD."""

import json

from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.provenance import untrained_note


def test_models_marks_untrained_students():
    result = CliRunner().invoke(app, ["models", "--format", "json"])
    assert result.exit_code == 0, result.output
    weights = {row["name"]: row["weights"] for row in json.loads(result.stdout)["models"]}
    assert weights["teacher"] == "trained"
    assert weights["lednet"] == weights["squeeze-unet-0.5"] == "untrained"


def test_evaluate_note_for_models_without_trained_weights():
    note = untrained_note("lednet", "default")
    assert note.startswith("lednet runs with random weights") and "compressbench distill --student lednet" in note
    assert "loaded" in untrained_note("teacher", "random")
    assert untrained_note("teacher", "default") is None
    assert untrained_note("my-student.pt", "default") is None  # a saved file is what the user made
