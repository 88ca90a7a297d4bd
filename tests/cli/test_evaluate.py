"""``compressbench evaluate``: the JSON record, overlays, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from compressbench.cli import app

try:
    from compressbench.data import frames_for  # noqa: F401

    HAVE_DATA = True
except ImportError:
    HAVE_DATA = False

needs_data = pytest.mark.skipif(not HAVE_DATA, reason="compressbench.data (frames_for) is not available yet")

METRICS = ("akd_px", "jacobian_error", "heatmap_mse", "heatmap_kl", "heatmap_peak", "landmark_error_px", "nmae")


def run(*args: str):
    return CliRunner().invoke(app, ["evaluate", *args])


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@needs_data
def test_json_record_against_ground_truth(reduced_yaml):
    result = run(
        "--config", str(reduced_yaml), "--weights", "random", "--against", "ground-truth",
        "--frames", "2", "--batch", "1", "--seed", "5", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert {"model", "data", "frames", "against", "seed", "overlays", "notes", *METRICS} <= set(record)
    assert (record["model"], record["data"], record["frames"], record["against"]) == ("teacher", "synthetic", 2, "ground-truth")
    assert record["image_size"] == 256 and record["seed"] == 5 and record["overlays"] is None
    # against ground truth: AKD is the landmark error; no reference heatmaps to compare with
    assert isinstance(record["akd_px"], float) and record["akd_px"] == pytest.approx(record["landmark_error_px"])
    assert record["heatmap_mse"] is None and record["heatmap_kl"] is None
    assert isinstance(record["heatmap_peak"], float) and 1 / 58**2 <= record["heatmap_peak"] <= 1
    assert isinstance(record["nmae"], float) and 0 <= record["nmae"] <= 1
    # an NMAE is a mean per-coordinate error, so it cannot exceed the mean point distance
    assert record["nmae"] * 256 <= record["akd_px"] + 1e-6
    assert record["jacobian_error"] is None or isinstance(record["jacobian_error"], float)


@needs_data
def test_against_the_teacher_with_overlays_and_an_output_file(reduced_yaml, tmp_path):
    out_file = tmp_path / "fidelity.json"
    overlay_dir = tmp_path / "overlays"
    result = run(
        "--config", str(reduced_yaml), "--weights", "random", "--frames", "2",
        "--format", "json", "--output", str(out_file), "--overlays", str(overlay_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    record = json.loads(out_file.read_text())
    assert record["against"] == "teacher" and record["frames"] == 2 and record["overlays"] == str(overlay_dir)
    for key in METRICS:
        assert isinstance(record[key], float), key
    assert record["akd_px"] > 0 and record["heatmap_kl"] >= 0
    assert sorted(p.name for p in overlay_dir.iterdir()) == ["overlay_000.png", "overlay_001.png"]


@needs_data
def test_markdown_table_lists_every_metric(reduced_yaml):
    result = run("--config", str(reduced_yaml), "--weights", "random", "--against", "ground-truth", "--frames", "1", "--format", "md")
    assert result.exit_code == 0, result.output
    assert "### Fidelity of teacher against ground-truth" in result.stdout
    for key in METRICS:
        assert f"| {key} " in result.stdout


def test_unknown_reference_is_one_line_listing_the_choices():
    assert_one_line_error(run("--against", "oracle"), "known: ground-truth, teacher")


@pytest.mark.parametrize("option", ["--frames", "--batch"])
def test_non_positive_counts_are_rejected(option):
    assert_one_line_error(run(option, "0"), f"{option} must be a positive integer")


def test_unknown_weights_and_format_are_rejected_before_work():
    assert_one_line_error(run("--weights", "pretrained"), "unknown --weights 'pretrained'")
    assert_one_line_error(run("--format", "xml"), "unknown format 'xml'")


def test_overlay_path_that_is_a_file_is_rejected(tmp_path):
    existing = tmp_path / "taken"
    existing.write_text("x")
    assert_one_line_error(run("--overlays", str(existing)), "is a file")


@needs_data
def test_empty_folder_is_an_error(tmp_path):
    result = run("--data", str(tmp_path), "--frames", "2")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")


@needs_data
def test_ground_truth_on_user_frames_is_an_error(tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "face.png", np.full((32, 32, 3), 128, dtype=np.uint8))
    assert_one_line_error(run("--data", str(tmp_path), "--frames", "1", "--against", "ground-truth"), "no ground-truth landmarks")

