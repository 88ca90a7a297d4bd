"""The search's recover training on two local Ray workers: the same numbers as in this process, a
cache either can resume, and a worker set-up that cannot run refused in one line before any work."""

from __future__ import annotations

import json
import logging
import os
import sys

import pytest
import torch
from typer.testing import CliRunner

from compressbench import variant_search as search_module
from compressbench.cli import app
from compressbench.errors import CompressbenchError
from compressbench.search_workers import check_workers
from compressbench.variant_search import SearchOptions, search
from tests.cli.test_search_cli import TINY
from tests.compression.test_recover import calibrated_teacher
from tests.test_variant_search import CANDIDATES

RECOVER = {"pool": 16, "batch": 4, "val_frames": 8, "val_every": 2, "lr": 1e-3}
# Scripted latencies (probe and final run alike): which candidates train, the front and the winner
# then depend on the trained weights alone, not on a noisy clock.
LATENCY_MS = {"__teacher__": 10.0, "teacher": 10.0, "exact": 9.0, "prune-0.3": 5.0, "prune-0.6": 3.0, "prune-0.6+exact": 2.5}



def options(cache, **extra) -> SearchOptions:
    # a bound no candidate meets: every structural one trains in round 1, one goes on from its weights
    given = dict(
        max_akd=1e-3, budget="10m", frames=4, size=64, min_steps=2, max_steps=4, recover=RECOVER, val_frames=8,
        warmup=0, repeats=2, cache=cache, progress=False, runtime="torch", precision="fp32", plan=False, fronts_on=(),
        train_threads=1,  # the thread count decides the numbers: the same in this process and in each worker
    )  # fmt: skip
    return SearchOptions(**{**given, **extra})


@pytest.fixture
def scripted_clock(monkeypatch):
    original = search_module.compare

    def compare(*args, **kwargs):
        record = original(*args, **kwargs)
        for row in record["rows"]:
            row["latency_ms"] = LATENCY_MS[row["variant"]]
        return record

    monkeypatch.setattr(search_module, "compare", compare)
    monkeypatch.setattr(search_module._Search, "latencies", lambda self, variants: {k: LATENCY_MS[k] for k in ["__teacher__", *(v.name for v in variants)]})


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of two CPUs for the module (it takes seconds to start), quiet, shut down after."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: make install-ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


def outcome(record: dict) -> dict:
    return {
        "front": record["front"], "winner": record["winner"],
        "rows": {r["variant"]: (r["recover_steps"], r["val_akd_px"], r["akd_px"]) for r in record["rows"][1:]},
    }  # fmt: skip


def heads(folder) -> dict:
    return {p.stem: torch.load(p, weights_only=True)["state_dict"] for p in folder.glob("*.pt")}


def test_two_ray_workers_train_the_same_heads_as_this_process_and_a_local_run_resumes_them(
    tmp_path, local_ray, scripted_clock, capfd
):
    here, there = tmp_path / "local", tmp_path / "ray"
    local, _ = search(calibrated_teacher(), options(here), None, CANDIDATES)
    capfd.readouterr()
    on_ray, winner = search(calibrated_teacher(), options(there, workers=2), None, CANDIDATES)
    assert not [line for line in capfd.readouterr().err.splitlines() if line.strip()]  # Ray keeps quiet
    # round 1: the prune-0.6 head (shared with its tail) and prune-0.3 at once; round 2 goes on from one
    assert on_ray["trained"] == local["trained"] and len(local["trained"]) == 3
    assert outcome(on_ray) == outcome(local) and (winner.name if winner else None) == on_ray["winner"]
    # bit for bit: every head, under the same cache key
    mine, theirs = heads(here), heads(there)
    assert mine.keys() == theirs.keys() and len(mine) == 3
    for key, state in mine.items():
        assert state.keys() == theirs[key].keys() and all(torch.equal(state[k], theirs[key][k]) for k in state), key
    # trained by the two workers, not this process (the two round-1 heads at once), cached by this process
    workers = {json.loads(p.read_text())["worker"]["pid"] for p in there.glob("*.json")}
    assert len(workers) == 2 and os.getpid() not in workers
    again, _ = search(calibrated_teacher(), options(there), None, CANDIDATES)  # one local worker, the Ray cache
    assert again["trained"] == [] and outcome(again) == outcome(on_ray)


def test_the_search_says_who_trained(tmp_path, local_ray, scripted_clock, monkeypatch):
    seen = {}
    original = search_module._Search._measure

    def measure(self, final, interrupted):
        seen.update(self.workers_info)
        return original(self, final, interrupted)

    monkeypatch.setattr(search_module._Search, "_measure", measure)
    search(calibrated_teacher(), options(tmp_path / "cache", workers=2), None, CANDIDATES[2:3])
    assert seen["backend"] == "ray" and seen["workers"] == 2 and seen["devices"] == ["cpu", "cpu"]
    assert seen["threads_per_worker"] == 1 and seen["jobs"] == 2  # round 1, then its continuation
    search(calibrated_teacher(), options(None), None, CANDIDATES[2:3])
    assert (seen["backend"], seen["workers"], seen["devices"], seen["jobs"]) == ("local", 1, ["cpu"], 2)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--workers", "0"], "--workers must be a positive integer"),
        (["--train-threads", "0"], "--train-threads must be a positive integer"),
        (["--ray-address", " "], "--ray-address is empty"),
    ],
)
def test_bad_worker_settings_are_one_line_exit_2_before_any_work(reduced_yaml, tmp_path, args, fragment):
    result = cli("search", "--config", reduced_yaml, *TINY, "--cache", tmp_path / "cache", *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("args", [["--workers", "2"], ["--ray-address", "auto"]])
def test_without_ray_more_workers_are_refused_naming_the_install(reduced_yaml, tmp_path, monkeypatch, args):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    result = cli("search", "--config", reduced_yaml, *TINY, "--cache", tmp_path / "cache", *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "make install-ray" in lines[0] and " ".join(args) in lines[0], lines
    assert not (tmp_path / "cache").exists()
    check_workers(1, None, None)  # one worker needs no Ray
    with pytest.raises(CompressbenchError, match="not installed"):
        check_workers(2, None, None)
