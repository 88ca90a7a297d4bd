"""The generic training loop: learning, exact resume, early stopping, checkpoints, bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.training.checkpoints import load_training_checkpoint
from compressbench.training.trainer import TrainConfig, indexed, train

TRUE_WEIGHT = torch.tensor([[1.5, -2.0, 0.5, 3.0]])
BATCH = 8


def toy_model() -> nn.Module:
    # BatchNorm (buffers) and Dropout (global RNG) make resume exactness non-trivial
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))


def batch_at(index: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(BATCH, 4, generator=torch.Generator().manual_seed(index))
    return x, x @ TRUE_WEIGHT.T


def loss_fn(model, batch):
    x, y = batch
    loss = (model(x) - y).square().mean()
    return loss, {"mse": float(loss.detach())}


VAL_X = torch.randn(64, 4, generator=torch.Generator().manual_seed(10_000))


def validate(model) -> dict[str, float]:
    return {"mse": float((model(VAL_X) - VAL_X @ TRUE_WEIGHT.T).square().mean())}


def adam(parameters):
    return torch.optim.Adam(parameters, lr=0.01)


def run(steps, checkpoint=None, resume=None, batches=None, **overrides):
    config = TrainConfig(steps=steps, seed=3, val_every=5, monitor="mse", checkpoint=checkpoint, progress=False, **overrides)
    return train(toy_model(), loss_fn, adam, batches or indexed(batch_at), validate, config, resume=resume)


def test_training_lowers_the_validation_error():
    before = validate(toy_model().eval())["mse"]
    result = run(100)
    assert result.step == 100 and not result.stopped_early
    assert [row["step"] for row in result.history] == list(range(5, 101, 5))
    assert result.best_value < before / 10
    assert validate(result.model.eval())["mse"] == pytest.approx(result.best_value, rel=1e-6)


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("source", ["indexed", "iterator"])
def test_half_run_plus_resume_is_bit_identical(tmp_path, source):
    def batches():  # a fresh endless iterator, or a source that can start anywhere
        return (batch_at(i) for i in itertools.count()) if source == "iterator" else indexed(batch_at)

    full = run(20, checkpoint=tmp_path / "full.pt", batches=batches())
    run(10, checkpoint=tmp_path / "half.pt", batches=batches())
    resumed = run(20, checkpoint=tmp_path / "resumed.pt", resume=tmp_path / "half.pt", batches=batches())

    a, b = load_training_checkpoint(tmp_path / "full.pt"), load_training_checkpoint(tmp_path / "resumed.pt")
    assert a["step"] == b["step"] == 20
    _assert_same_state(a["last"], b["last"])
    _assert_same_state(a["kp_detector"], b["kp_detector"])
    assert a["best"] == b["best"]
    assert a["history"] == b["history"]
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])
    _assert_same_state(full.model.state_dict(), resumed.model.state_dict())


def test_resume_after_a_crash_between_validations_is_bit_identical(tmp_path):
    full = run(20, checkpoint=tmp_path / "full.pt")
    calls = itertools.count(1)

    def crashing(model, batch):  # the process dies during step 14
        if next(calls) == 14:
            raise RuntimeError("killed")
        return loss_fn(model, batch)

    config = TrainConfig(steps=20, seed=3, val_every=5, monitor="mse", checkpoint=tmp_path / "c.pt",
                         checkpoint_every=3, progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        train(toy_model(), crashing, adam, indexed(batch_at), validate, config)
    crashed = load_training_checkpoint(tmp_path / "c.pt")
    assert crashed["step"] == 12 and crashed["running_loss"]["count"] == 2  # steps 11 and 12 since validating at 10
    resumed = run(20, checkpoint=tmp_path / "c.pt", resume=tmp_path / "c.pt")
    a, b = load_training_checkpoint(tmp_path / "full.pt"), load_training_checkpoint(tmp_path / "c.pt")
    _assert_same_state(a["last"], b["last"])
    assert a["history"] == b["history"] and b["meta"]["resumed_at"] == [12]
    _assert_same_state(full.model.state_dict(), resumed.model.state_dict())


def test_early_stopping_keeps_the_best_weights(tmp_path):
    scores = iter([3.0, 1.0, 2.0, 2.0, 0.5])
    seen = {}

    def scripted(model):
        score = next(scores)
        seen[score] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"mse": score}

    config = TrainConfig(steps=100, val_every=5, monitor="mse", patience=2, checkpoint=tmp_path / "c.pt", progress=False)
    result = train(toy_model(), loss_fn, adam, indexed(batch_at), scripted, config)
    assert result.stopped_early and result.step == 20  # validations at 5, 10 (best), 15, 20: two without improvement
    assert (result.best_step, result.best_value) == (10, 1.0)
    _assert_same_state(result.model.state_dict(), seen[1.0])
    saved = load_training_checkpoint(tmp_path / "c.pt")
    _assert_same_state(saved["kp_detector"], seen[1.0])
    _assert_same_state(saved["last"], seen[2.0])
    assert saved["best"] == {"metric": "mse", "mode": "min", "value": 1.0, "step": 10, "bad_validations": 2}


def test_max_mode_prefers_higher_values():
    scores = iter([0.1, 0.9, 0.5])
    config = TrainConfig(steps=15, val_every=5, monitor="acc", mode="max", progress=False)
    result = train(toy_model(), loss_fn, adam, indexed(batch_at), lambda m: {"acc": next(scores)}, config)
    assert (result.best_step, result.best_value) == (10, 0.9)


def test_checkpoint_holds_plain_values_only(tmp_path):
    run(5, checkpoint=tmp_path / "c.pt", meta={"command": "x --y 1"})
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    assert set(payload) >= {"kp_detector", "last", "optimizer", "step", "rng", "best", "meta", "history"}
    assert payload["step"] == 5 and len(payload["rng"]) == 1
    assert payload["meta"]["command"] == "x --y 1" and payload["meta"]["seed"] == 3
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"val_every": -1}, "val_every must be a positive integer"),
        ({"patience": 0}, "patience must be"),
        ({"mode": "best"}, "mode must be one of"),
    ],
)
def test_bad_config_is_rejected(overrides, message):
    with pytest.raises(CompressbenchError, match=message):
        TrainConfig(**{"steps": 10, **overrides})


def test_unknown_monitor_and_finished_resume_are_clear_errors(tmp_path):
    config = TrainConfig(steps=5, val_every=5, monitor="accuracy", progress=False)
    with pytest.raises(CompressbenchError, match="no metric 'accuracy'.*mse"):
        train(toy_model(), loss_fn, adam, indexed(batch_at), validate, config)
    run(5, checkpoint=tmp_path / "c.pt")
    with pytest.raises(CompressbenchError, match="already at step 5"):
        run(5, resume=tmp_path / "c.pt")
    (tmp_path / "bare.pt").write_bytes(b"")
    torch.save({"w": torch.zeros(1)}, tmp_path / "bare.pt")
    with pytest.raises(CompressbenchError, match="not a compressbench training checkpoint"):
        run(10, resume=tmp_path / "bare.pt")


def test_divergence_stops_with_a_clear_error():
    def exploding(model, batch):
        return model(batch[0]).sum() * float("inf"), {}

    config = TrainConfig(steps=5, progress=False)
    with pytest.raises(CompressbenchError, match="diverged at step 1"):
        train(toy_model(), exploding, adam, indexed(batch_at), validate, config)
