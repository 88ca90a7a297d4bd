import json

import pytest
import torch

from compressbench.comparison import save_compressed
from compressbench.comparison.saving import check_exportable
from compressbench.compression import CompressionContext, get_method
from compressbench.errors import CompressbenchError
from compressbench.provenance import Base, Provenance, check_savable, derive, load_model, provenance_of, sidecar_path

from ..standins import FRAME_SIZE, SMALL, small_teacher

RECORD = {"env": {"torch": torch.__version__, "threads": 1}}  # torch.__version__ is a str subclass
ROW = {"variant": "teacher+prune", "params": 1, "speedup": 1.5, "note": None}


@pytest.fixture(scope="module")
def pruned():
    context = CompressionContext(input_shape=(1, 3, FRAME_SIZE, FRAME_SIZE), show_progress=False)
    options = get_method("prune").resolve({"ratio": 0.5})
    return derive(small_teacher(), ["prune"], [options], context)[-1]


def test_saved_variant_and_sidecar_round_trip(pruned, tmp_path):
    path = tmp_path / "v.pt"
    assert save_compressed(pruned, path, RECORD, ROW) == [path, tmp_path / "v.pt.json"]
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["format"] == "compressbench-variant/2" and sidecar["row"] == ROW
    assert [s["method"] for s in sidecar["stages"]] == ["prune"]
    assert sidecar["base"] == {"architecture": "registered-model", "builder_args": {"model": "teacher", "config": SMALL.to_dict()}}
    loaded = load_model(path)  # weights_only=True read, structure replayed by prune.rebuild
    example = torch.rand(2, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(loaded(example)["value"], pruned.module(example)["value"])
    payload = torch.load(path, weights_only=True)
    assert payload["metadata"]["row"] == ROW and type(payload["metadata"]["env"]["torch"]) is str


def test_a_failed_sidecar_write_removes_the_model_file(pruned, tmp_path, monkeypatch):
    import compressbench.provenance as provenance

    def refuse(path, data):
        raise CompressbenchError("disk full")

    monkeypatch.setattr(provenance, "write_atomic", refuse)
    with pytest.raises(CompressbenchError, match="disk full"):
        save_compressed(pruned, tmp_path / "v.pt", RECORD, ROW)
    assert list(tmp_path.iterdir()) == []


def test_provenance_of_a_registered_model_and_of_a_saved_chain(pruned, tmp_path):
    start = provenance_of("teacher", small_teacher())
    assert start.base == Base("registered-model", {"model": "teacher", "config": SMALL.to_dict()}) and start.stages == ()
    path = tmp_path / "v.pt"
    save_compressed(pruned, path, RECORD, ROW)
    saved = provenance_of(str(path), load_model(path))
    assert saved.base == start.base
    assert [s.method for s in saved.stages] == ["prune"] and saved.stages[0].structure == pruned.stages[0].structure


def test_a_module_of_unknown_origin_cannot_be_saved(pruned, tmp_path):
    assert not provenance_of(pruned.module).rebuildable  # teacher-shaped, but no base alone rebuilds it
    with pytest.raises(CompressbenchError, match="origin is unknown"):
        check_savable(Provenance(), tmp_path / "v.pt")
    with pytest.raises(CompressbenchError, match="does not exist"):
        check_savable(provenance_of(small_teacher()), tmp_path / "no" / "v.pt")
    check_savable(provenance_of(small_teacher()), tmp_path / "v.pt")
    assert list(tmp_path.iterdir()) == []


def test_check_exportable(int8_variant):
    check_exportable(small_teacher())
    with pytest.raises(CompressbenchError, match="--export-onnx: the final variant cannot be exported"):
        check_exportable(int8_variant.module)
