"""The trainer under torchrun: two CPU processes (gloo) train one model in step and rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from compressbench.training.distributed import DistContext, setup


def test_without_torchrun_everything_is_local(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    ctx = setup("cpu")
    model = torch.nn.Linear(2, 2)
    assert ctx == DistContext(device=torch.device("cpu")) and ctx.is_main and not ctx.distributed
    assert ctx.wrap(model) is model
    assert ctx.broadcast({"a": 1}) == {"a": 1} and ctx.gather(3) == [3] and ctx.mean(2.5) == 2.5


def test_two_processes_train_the_same_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               __file__, str(tmp_path / "ddp.pt")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    checkpoint = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert checkpoint["step"] == 6 and checkpoint["meta"]["world_size"] == 2
    assert len(checkpoint["rng"]) == 2  # each rank's random state, for an exact resume
    assert not checkpoint["rng"][0]["torch"].equal(checkpoint["rng"][1]["torch"])  # ranks are seeded apart
    rank0, rank1 = (torch.load(tmp_path / f"ddp.pt.rank{r}", weights_only=True) for r in (0, 1))
    for name, tensor in rank0.items():
        if "running" not in name and "num_batches" not in name:  # BatchNorm statistics stay per rank
            assert torch.equal(tensor, rank1[name]), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt", "ddp.pt.rank0", "ddp.pt.rank1"]


def _worker(checkpoint: str) -> None:
    """One torchrun process: the toy problem of test_trainer, 6 steps, sharded by rank."""
    from compressbench.training.trainer import TrainConfig, indexed, train
    from tests.training.test_trainer import adam, batch_at, loss_fn, toy_model, validate

    config = TrainConfig(steps=6, seed=3, val_every=3, monitor="mse", checkpoint=checkpoint, progress=False)
    model = toy_model()
    train(model, loss_fn, adam, indexed(batch_at), validate, config)
    rank = int(os.environ["RANK"])
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, f"{checkpoint}.rank{rank}")


if __name__ == "__main__":
    _worker(sys.argv[1])
