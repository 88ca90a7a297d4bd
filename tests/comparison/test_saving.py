import json

import pytest
import torch

from compressbench.comparison import Origin, origin_of, save_compressed, saving, sidecar_path
from compressbench.comparison.saving import check_exportable, check_save_target
from compressbench.compression import CompressionContext, compress, get_method
from compressbench.errors import CompressbenchError
from compressbench.models import load_model

from .standins import FRAME_SIZE, SMALL, small_teacher

RECORD = {"env": {"torch": torch.__version__, "threads": 1}}  # torch.__version__ is a str subclass
ROW = {"variant": "teacher+prune", "params": 1, "speedup": 1.5, "note": None}


@pytest.fixture(scope="module")
def pruned():
    context = CompressionContext(input_shape=(1, 3, FRAME_SIZE, FRAME_SIZE), show_progress=False)
    options = get_method("prune").resolve({"ratio": 0.5})
    base = {"model": "teacher", "config": SMALL.to_dict()}
    return compress(small_teacher(), ["prune"], [options], context, base=base)[-1]


def test_saved_variant_and_sidecar_round_trip(pruned, tmp_path):
    path = tmp_path / "v.pt"
    assert save_compressed(pruned, path, RECORD, ROW) == (path, tmp_path / "v.pt.json")
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["format"] == "compressbench-variant/1" and sidecar["row"] == ROW
    assert [s["method"] for s in sidecar["chain"]] == ["prune"] and sidecar["base"]["model"] == "teacher"
    loaded = load_model(path)  # weights_only=True read, structure replayed by prune.rebuild
    example = torch.rand(2, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(loaded(example)["value"], pruned.module(example)["value"])
    payload = torch.load(path, weights_only=True)
    assert payload["metadata"]["row"] == ROW and type(payload["metadata"]["env"]["torch"]) is str


def test_a_failed_sidecar_write_removes_the_model_file(pruned, tmp_path, monkeypatch):
    def refuse(path, data):
        raise CompressbenchError("disk full")

    monkeypatch.setattr(saving, "write_atomic", refuse)
    with pytest.raises(CompressbenchError, match="disk full"):
        save_compressed(pruned, tmp_path / "v.pt", RECORD, ROW)
    assert list(tmp_path.iterdir()) == []


def test_origin_of_a_registered_model_and_of_a_saved_chain(pruned, tmp_path):
    origin = origin_of("teacher", small_teacher())
    assert origin.base == {"model": "teacher", "config": SMALL.to_dict()} and origin.stages == []
    path = tmp_path / "v.pt"
    save_compressed(pruned, path, RECORD, ROW)
    origin = origin_of(str(path), load_model(path))
    assert origin.base["model"] == "teacher"
    assert [s["method"] for s in origin.stages] == ["prune"] and "structure" in origin.stages[0]


def test_save_target_checks(tmp_path):
    with pytest.raises(CompressbenchError, match="no known base"):
        check_save_target(tmp_path / "v.pt", Origin())
    with pytest.raises(CompressbenchError, match="does not exist"):
        check_save_target(tmp_path / "no" / "v.pt", Origin({"model": "teacher"}))
    check_save_target(tmp_path / "v.pt", Origin({"model": "teacher"}))
    assert list(tmp_path.iterdir()) == []


def test_check_exportable(int8_variant):
    check_exportable(small_teacher())
    with pytest.raises(CompressbenchError, match="--export-onnx: the final variant cannot be exported"):
        check_exportable(int8_variant.module)
