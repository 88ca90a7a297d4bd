"""Measurement health on synthetic numbers: load, probe floor, per-layer floor, CPU scaling."""

from __future__ import annotations

import pytest

from compressbench.profiling.health import (
    Health,
    assess,
    governor_warning,
    layer_floor_warning,
    layer_health,
    load_warning,
    probe_warning,
    read_governor,
)


def layers(ms_small: float, ms_big: float = 20.0) -> list[dict]:
    """Five small layers (64 KB each, 0.066 ms at 1 GB/s) and three big ones (40 MB)."""
    small = [{"module": f"relu{i}", "bytes": 65_536, "latency_ms": ms_small + i / 100} for i in range(5)]
    big = [{"module": f"conv{i}", "bytes": 40_000_000, "latency_ms": ms_big} for i in range(3)]
    return small + big


def test_layer_floor_on_synthetic_timings():
    assert layer_floor_warning(layers(0.02)) is None  # an idle machine: small ops take microseconds
    warning = layer_floor_warning(layers(6.5))  # the oversubscribed case: every small op ~6.5 ms
    assert warning == "time floor: the 5 smallest layers all take over 1 ms (fastest relu0: 6.50 ms for 0.07 MB)"
    # one slow small layer is not a floor: the fastest of the five decides
    mixed = layers(0.02)
    mixed[1]["latency_ms"] = 9.0
    assert layer_floor_warning(mixed) is None
    # big layers above the floor say nothing: their bytes explain their time
    assert layer_floor_warning([{"module": "c", "bytes": 40_000_000, "latency_ms": 30.0}] * 6) is None
    assert layer_floor_warning(layers(6.5)[:4]) is None  # too few layers to tell
    assert not layer_health(layers(6.5)).healthy and layer_health(layers(0.02)).healthy


def test_load_against_threads_and_cores():
    assert load_warning(0.1, threads=2, cores=2) is None
    assert load_warning(1.3, threads=2, cores=2) == "oversubscribed: load average 1.3 on 2 cores leaves 0.7 free for 2 threads"
    assert load_warning(1.3, threads=1, cores=2) is None  # one free core is enough for one thread
    assert load_warning(3.0, threads=1, cores=2) == "oversubscribed: load average 3.0 on 2 cores leaves 0.0 free for 1 threads"
    assert load_warning(6.0, threads=4, cores=16) is None


def test_probe_and_governor():
    assert probe_warning(0.03) is None
    assert probe_warning(6.8) == "time floor: a ReLU on 64x32x32 took 6.80 ms (expected well under 1 ms)"
    assert governor_warning(None) is None and governor_warning("performance\n") is None
    assert governor_warning("powersave").startswith("CPU frequency scaling: governor 'powersave'")


def test_governor_read_where_visible(tmp_path):
    assert read_governor(tmp_path) is None
    (tmp_path / "scaling_governor").write_text("schedutil\n")
    assert read_governor(tmp_path) == "schedutil"


def test_assess_collects_every_warning_in_one_line():
    quiet = assess(threads=2, cores=2, load1=0.05, probe=0.02, governor=None)
    assert quiet.healthy and quiet.line() == "measurement health: ok"
    busy = assess(threads=2, cores=2, load1=1.3, probe=6.8, governor="powersave")
    assert len(busy.warnings) == 3 and "\n" not in busy.line()
    assert busy.to_dict()["checks"]["probe_ms"] == 6.8
    merged = busy.merged(Health(("x",), {"y": 1}))
    assert merged.warnings[-1] == "x" and merged.checks["y"] == 1


def test_ruler_against_the_baseline():
    from compressbench.profiling.health import ruler_warning

    assert ruler_warning([10.0, 10.2, 9.8], [11.0, 12.0, 14.0]) is None  # 1.2x: within the ordinary spread
    assert ruler_warning([10.0, 10.2, 9.8], [60.0, 59.0, 61.0]) == (
        "the reference workload ran 6.0x slower than when the baseline was recorded (60.0 vs 10.0 ms median): the machine is busier"
    )
    assert ruler_warning([], [1.0]) is None


STAT_BEFORE = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 100 0 50 350 0 0 0 0 0 0
cpu1 200 0 50 250 0 0 0 0 0 0
intr 12345
"""
# over the window: cpu0 busy 90 of 100 jiffies, cpu1 busy 40 of 100 (of which 10 steal), 10 iowait idle
STAT_AFTER = """cpu  0 0 0 0 0 0 0 0 0 0
cpu0 180 0 60 360 0 0 0 0 0 0
cpu1 220 0 60 300 10 0 0 10 0 0
"""


def test_busy_cores_from_proc_stat():
    from compressbench.profiling.health import busy_cores, cpu_times

    assert cpu_times(STAT_BEFORE) == {0: (150, 500), 1: (250, 500)}
    assert busy_cores(STAT_BEFORE, STAT_AFTER) == pytest.approx(0.9 + 0.4)
    assert busy_cores(STAT_BEFORE, STAT_AFTER, cpus={1}) == pytest.approx(0.4)  # only the cores we may use


def test_busy_cores_decide_over_the_load_average():
    from compressbench.profiling.health import busy_warning

    # the load average counts our own last run; the busy cores now do not
    assert assess(threads=2, cores=2, load1=1.9, probe=0.02, governor=None, busy=0.1).healthy
    crowded = assess(threads=2, cores=2, load1=0.2, probe=0.02, governor=None, busy=1.3)
    assert crowded.warnings == ("oversubscribed: other processes kept 1.3 of 2 cores busy, leaving 0.7 for 2 threads",)
    assert busy_warning(1.3, threads=1, cores=2) is None
    # half a core busy beside 2 threads on 2 cores slowed the teacher by 68%: flagged; a quiet tenth is not
    assert busy_warning(0.48, threads=2, cores=2) == "oversubscribed: other processes kept 0.5 of 2 cores busy, leaving 1.5 for 2 threads"
    assert busy_warning(0.1, threads=2, cores=2) is None
