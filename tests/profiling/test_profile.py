"""profile(): seed 000's tables on a reduced teacher, and any other model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from compressbench.profiling import count_params
from compressbench.records import PROFILE_FORMAT, ProfileRecord
from compressbench.runtimes.profile import profile


@pytest.fixture(scope="module")
def record():
    from compressbench.models import DetectorConfig, build_teacher

    model = build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3))
    return profile(model, (1, 3, 64, 64), name="reduced", warmup=1, repeats=3, threads=1, show_progress=False), model


def test_record_schema(record):
    rec, _ = record
    assert isinstance(rec, ProfileRecord)
    assert rec.latency_ms.runs == 3 and rec.latency_ms.p10 <= rec.latency_ms.median <= rec.latency_ms.p90
    assert (rec.batch, rec.input_size, rec.input_shape, rec.threads, rec.warmup) == (1, 64, [1, 3, 64, 64], 1, 1)
    assert set(rec.attribution) >= {"layers_sum_ms", "modules_sum_ms", "end_to_end_ms", "gap_pct"}
    assert rec.attribution["end_to_end_ms"] == rec.latency_ms.median
    assert set(rec.env) >= {"torch", "cpu", "date"}
    assert rec.env["torch"] == torch.__version__


def test_a_real_profile_round_trips_through_json(record):
    rec, _ = record
    written = json.loads(json.dumps(rec.to_json()))  # as a file holds it
    assert written["format"] == PROFILE_FORMAT
    assert list(written)[1:] == list(ProfileRecord.__dataclass_fields__)  # the keys files always had, in order
    assert written["latency_ms"] == {"median": rec.latency_ms.median, "p10": rec.latency_ms.p10, "p90": rec.latency_ms.p90,
                                     "iqr": rec.latency_ms.iqr, "runs": 3}  # fmt: skip
    assert ProfileRecord.from_json(written) == rec


def test_tables_use_seed_names(record):
    rec, model = record
    assert [m["name"] for m in rec.modules] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]
    names = [b["name"] for b in rec.blocks]
    assert names == [f"downblock_{i}" for i in (1, 2, 3)] + [f"upblock_{i}" for i in (1, 2, 3)] + ["hourglass"]
    blocks = {b["name"]: b for b in rec.blocks}
    assert blocks["hourglass"]["params"] == count_params(model.predictor)
    assert blocks["downblock_1"]["params"] == count_params(model.predictor.encoder.down_blocks[0])
    assert blocks["downblock_1"]["input_shape"] == [3, 16, 16]
    assert blocks["downblock_1"]["output_shape"] == [16, 8, 8]
    assert blocks["upblock_2"]["input_shape"] == [64, 4, 4]  # 32 up + 32 skip channels
    ops = {(layer["block"], layer["op"]) for layer in rec.layers}
    for op in ("conv", "batchnorm", "relu", "avgpool"):
        assert ("downblock_1", op) in ops
    for op in ("interpolation", "conv", "batchnorm", "relu", "concat"):
        assert ("upblock_3", op) in ops
    assert ("anti_alias", "blur_subsample") in ops and ("heatmap_keypoint", "soft_argmax") in ops


def test_attribution_adds_up(record):
    rec, _ = record
    att = rec.attribution
    assert att["layers_sum_ms"] == pytest.approx(sum(layer["latency_ms"] for layer in rec.layers))
    assert att["modules_sum_ms"] == pytest.approx(sum(m["latency_ms"] for m in rec.modules))
    assert att["gap_pct"] == pytest.approx(100 * (att["layers_sum_ms"] - att["end_to_end_ms"]) / att["end_to_end_ms"])


def test_any_model_gets_a_module_tree():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 2, 1), nn.ReLU()))
    rec = profile(model, (2, 3, 16, 16), name="seq", warmup=0, repeats=2, depth=2, show_progress=False)
    assert rec.params == 3 * 4 * 9 + 4 + 4 * 2 + 2
    assert rec.macs_fvcore == 4 * 256 * 27 * 2 + 2 * 256 * 4 * 2  # batch of 2
    tree = {row["name"]: row for row in rec.tree}
    assert set(tree) == {"0", "1", "2", "2.0", "2.1"}
    assert tree["2.0"]["depth"] == 2 and tree["0"]["type"] == "Conv2d"
    assert [m["name"] for m in rec.modules] == ["0", "1", "2"]
    assert not rec.hourglass_layout and ProfileRecord.from_json(rec.to_json()) == rec


def test_bad_shape_rejected():
    with pytest.raises(ValueError):
        profile(nn.Identity(), (3, 64, 64), show_progress=False)
