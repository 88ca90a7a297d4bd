"""The shipped default teacher: a float16 file, its record, and that it really localises landmarks."""

from __future__ import annotations

import json

import torch

from compressbench.data import synthetic_frames
from compressbench.models import DetectorConfig
from compressbench.models.default_weights import WEIGHTS_DIR, default_weights_path, has_default_weights, to_float32
from compressbench.provenance import load_model
from compressbench.training.teacher import evaluate_teacher

WEIGHTS = WEIGHTS_DIR / "teacher-vox256.pt"
RECORD = WEIGHTS_DIR / "teacher-vox256.json"
MAX_BYTES = 30 * 10**6
REDUCED = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)


def test_the_file_is_a_float16_state_dict_of_the_teacher():
    assert default_weights_path("teacher") == WEIGHTS and WEIGHTS.stat().st_size <= MAX_BYTES
    state = torch.load(WEIGHTS, weights_only=True)
    expected = load_model("teacher", weights="random").state_dict()
    assert state.keys() == expected.keys()
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float16}
    assert all(state[k].shape == expected[k].shape for k in state)


def test_the_record_says_how_it_was_made_and_how_good_it_is():
    record = json.loads(RECORD.read_text())
    training, test = record["training"], record["test"]
    assert training["command"].startswith("compressbench teacher train ")
    assert f"--seed {training['seed']}" in training["command"]
    planned = int(training["command"].split("--steps ")[1].split()[0])
    # the shipped checkpoint is the one written after step `steps` of a run planned for `planned` steps
    assert training["steps"] <= planned and training.get("stopped_after_step", planned) == training["steps"]
    assert training["torch"] and record["dtype"] == "float16" and record["file"] == WEIGHTS.name
    assert test["split"] == "test" and test["frames"] >= 256
    assert test["landmark_error_px"] <= 3.0 and test["heatmap_peak"] >= 0.1


def test_load_model_means_trained_weights_unless_random_is_asked_for():
    trained = load_model("teacher").state_dict()
    shipped = to_float32(torch.load(WEIGHTS, weights_only=True))
    random = load_model("teacher", weights="random").state_dict()
    # learned tensors come from the file; the anti-alias Gaussian (a function of the architecture)
    # stays as computed, since the file holds it only to float16 rounding
    assert [k for k in shipped if not torch.equal(trained[k], shipped[k])] == ["down.weight"]
    assert torch.equal(trained["down.weight"], random["down.weight"])
    assert torch.equal(trained["down.weight"].half(), shipped["down.weight"].half())
    assert not torch.equal(random["kp.weight"], trained["kp.weight"])
    assert has_default_weights("teacher") and not has_default_weights("teacher", REDUCED)


def test_the_loaded_anti_alias_kernel_is_exactly_separable():
    from compressbench.compression.exact import separable_factors

    assert separable_factors(to_float32(torch.load(WEIGHTS, weights_only=True))["down.weight"]) is None  # float16 breaks it
    assert separable_factors(load_model("teacher").down.weight) is not None


def test_a_kernel_that_differs_beyond_float16_rounding_is_kept_from_the_file():
    from compressbench.models.default_weights import keep_computed_buffers

    computed = {"down.weight": torch.full((1, 1, 3, 3), 1 / 9)}
    other = {"down.weight": torch.full((1, 1, 3, 3), 0.2)}
    assert torch.equal(keep_computed_buffers(other, computed)["down.weight"], other["down.weight"])
    rounded = {"down.weight": computed["down.weight"].half().float()}
    assert torch.equal(keep_computed_buffers(rounded, computed)["down.weight"], computed["down.weight"])


def test_it_localises_held_out_landmarks():
    torch.set_num_threads(1)
    measured = evaluate_teacher(load_model("teacher"), synthetic_frames(8, split="test", seed=0), batch_size=4)
    assert measured["landmark_error_px"] <= 3.0
    assert measured["heatmap_peak"] >= 0.1
