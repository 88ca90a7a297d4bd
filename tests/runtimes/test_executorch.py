"""ExecuTorch (optional extra): a .pte with the XNNPACK delegate that runs and agrees with eager fp32.

Skipped where executorch is not installed (it is not a default dependency; the one-line answer for
that case is tested in test_registry.py)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.runtimes import RuntimeUnavailable, prepare

executorch = pytest.importorskip("executorch", reason="executorch is an optional extra, not installed here")

FP32_ATOL = 1e-4


def test_executorch_fp32_agrees_with_eager(detector, batch, held_out):
    prepared = prepare("executorch", detector, batch, 2, "fp32")
    out = prepared.outputs(held_out)
    with torch.inference_mode():
        reference = detector(held_out)
    for key in ("value", "jacobian", "heatmap"):
        torch.testing.assert_close(out[key], reference[key], atol=FP32_ATOL, rtol=0)
    record = prepared.record
    assert (record.runtime, record.precision_used, record.threads) == ("executorch", "fp32", 2)
    assert "XNNPACK x86 kernels, a proxy for a phone" in record.notes


def test_executorch_bf16_is_unavailable(detector, batch):
    with pytest.raises(RuntimeUnavailable, match="executorch bf16 is not wired"):
        prepare("executorch", detector, batch, 1, "bf16")


def test_executorch_int8_with_xnnpacks_quantizer(detector, batch, held_out, calibration):
    """Measured: 0.11 px on these 8 held-out 64 px frames; bound 1.0 px as for the other int8 runs."""
    from compressbench import metrics

    prepared = prepare("executorch", detector, batch, 1, "int8", calibration)
    out = prepared.outputs(held_out)
    with torch.inference_mode():
        reference = detector(held_out)
    assert 0 < float(metrics.akd_px(out["value"], reference["value"], 64)) < 1.0
    assert any(note.startswith("XNNPACK quantizer: per-channel int8") for note in prepared.record.notes)


def test_compress_exports_a_pte_that_loads(tmp_path, reduced_yaml):
    from executorch.runtime import Runtime

    pte = tmp_path / "variant.pte"
    result = CliRunner().invoke(app, [
        "compress", "--method", "exact", "--config", str(reduced_yaml), "--weights", "random", "--input-size", "64",
        "--frames", "2", "--repeats", "1", "--warmup", "0", "--export-pte", str(pte), "--format", "json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pte"] == str(pte)
    program = Runtime.get().load_program(pte.read_bytes())
    outputs = program.load_method("forward").execute([torch.rand(1, 3, 64, 64)])
    # value, jacobian, heatmap of the reduced detector at 64 px (16 px after the anti-alias, 7x7 conv: 10 px)
    assert [tuple(o.shape) for o in outputs] == [(1, 10, 2), (1, 10, 2, 2), (1, 10, 10, 10)]


def test_profile_on_executorch_attributes_etdumps_events_to_the_modules(detector):
    from compressbench.runtimes.profile import profile

    record = profile(
        detector, (1, 3, 64, 64), warmup=1, repeats=3, threads=1, show_progress=False, runtime="executorch"
    )
    assert [m["name"] for m in record.modules][:4] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]
    att = record.attribution
    assert "unavailable" not in att and att["end_to_end_ms"] == record.latency_ms.median > 0
    assert att["modules_sum_ms"] == pytest.approx(sum(m["latency_ms"] for m in record.modules))
    assert {(r["block"], r["op"]) for r in record.layers} >= {("downblock_1", "conv"), ("upblock_3", "interpolation")}


def test_export_writes_a_pte_that_reloads_and_reproduces_the_measurement(detector, tmp_path):
    import compressbench

    result = compressbench.export(detector, tmp_path / "et", runtime="executorch", frames=4, input_size=64,
                                  repeats=2, warmup=0)  # fmt: skip
    assert [p.name for p in result.files] == ["model.pte"]
    assert result.manifest["runtime"]["precision_used"] == "fp32"
    assert abs(result.manifest["verification"]["akd_difference_px"]) <= result.manifest["verification"]["tolerance_px"]
