"""Where the search's recover training runs: in the search's own process, or on Ray workers.

A :class:`TrainJob` describes one trained head completely: where it starts (the teacher, or an
earlier round's head) and the stages to apply, one segment per recover round, each segment ending
in a head the search caches. Everything else a job depends on is the same for the whole search and
goes to every worker once (:class:`TrainSetup`: frames and seed; the teacher through the object
store). A worker replays the job with :func:`compressbench.provenance.derive`, the path local training
takes, with the same frames, seed and torch thread count, so it returns the very numbers the search's
own process would have computed; the trained heads come back to the search (the module, with its
provenance and reports), which alone writes the cache. So a resumed search reuses heads whichever
worker trained them, and the workers need no shared folder.

Pools: :class:`LocalPool` trains in the calling process, one job after the other (the default);
:class:`RayPool` runs ``workers`` Ray actors, on a local Ray started here or on a cluster's
``address``, each on ``threads`` torch threads and on a GPU where its node has one. Ray is an
optional extra (``make install-ray``); :func:`check_workers` refuses a pool that cannot run,
before any work. Only training runs on workers: latency is timed in the search's process, on the
machine its records name.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from compressbench.compression import CompressionContext
from compressbench.data.holdout import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.profiling.timing import torch_threads
from compressbench.provenance import Provenance, Variant, derive

INSTALL_HINT = "install it with `make install-ray` (or pip install 'compressbench[ray]')"
START_TIMEOUT_S = 300  # how long Ray may take to place every worker before the search gives up


@dataclass(frozen=True)
class TrainSetup:
    """What every job of one search shares: the frames (calibration frames are made from these, in
    each worker) and the seed."""

    data: str
    eval_count: int
    seed: int
    size: int

    def frames(self) -> FrameSource:
        return FrameSource(self.data, self.eval_count, self.seed, self.size)


@dataclass(frozen=True)
class TrainJob:
    """One head to train: from ``start`` (None: the teacher, at the search's start provenance), each
    of ``segments`` (stage dicts ``{"method", "options"}``) applied in turn; ``labels[i]``
    ("candidate@steps") names the head after segment ``i``."""

    segments: tuple[tuple[dict, ...], ...]
    labels: tuple[str, ...]
    start: Variant | None = None


@dataclass
class TrainResult:
    """The heads a job made (one per segment, each a full Variant with its provenance and reports),
    the training seconds of each segment as measured where it ran, and who ran it."""

    heads: list[Variant]
    seconds: list[float]
    worker: dict


def cached_calibration(frames: FrameSource) -> Callable[[int], torch.Tensor]:
    """Calibration frames made once per count (every recover and quantize stage of a search asks
    for the same ones); each call gets a copy, since a stage may change what it is given."""
    made = functools.lru_cache(maxsize=4)(frames.calibration)

    def calibration(count: int) -> torch.Tensor:
        return made(count).clone()

    return calibration


def training_context(setup: TrainSetup, teacher: nn.Module, device: str, calibration=None) -> CompressionContext:
    """The context every training of a search runs in (the search's own, or a worker's copy)."""
    frames = setup.frames()
    return CompressionContext(
        calibration_frames=calibration or cached_calibration(frames), calibration_stream=frames.calibration_at,
        input_shape=(1, 3, setup.size, setup.size), seed=setup.seed, show_progress=False, teacher=teacher, device=device,
    )  # fmt: skip


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def train(job: TrainJob, teacher: nn.Module, start: Provenance, context: CompressionContext, worker: dict) -> TrainResult:
    """Run ``job``: each segment derived from the previous segment's head (the first from
    ``job.start`` or the teacher), timed on its own."""
    module, provenance = (job.start.module, job.start.provenance) if job.start is not None else (teacher, start)
    heads, seconds = [], []
    for segment in job.segments:
        started = time.perf_counter()
        variant = derive(module, [s["method"] for s in segment], [s["options"] for s in segment], context, provenance=provenance)[-1]
        seconds.append(time.perf_counter() - started)
        heads.append(variant)
        module, provenance = variant.module, variant.provenance
    return TrainResult(heads, seconds, worker)


class LocalPool:
    """Training in the calling process, one job at a time, with its context (and so its labelled
    pools) shared across jobs; on the GPU when torch sees one."""

    backend = "local"
    parallel = False

    def __init__(self, teacher: nn.Module, start: Provenance, context: CompressionContext, threads: int | None = None) -> None:
        self.workers = 1
        self.teacher, self.start, self.threads = teacher, start, threads
        self.device = default_device()
        self.context = context if context.device == self.device else dataclasses.replace(context, device=self.device)
        self.jobs = 0

    def run(self, jobs: list[TrainJob]) -> Iterator[tuple[int, TrainResult]]:
        for index, job in enumerate(jobs):
            with torch_threads(self.threads) as threads:
                worker = {"host": socket.gethostname(), "pid": os.getpid(), "device": self.device, "threads": threads}
                result = train(job, self.teacher, self.start, self.context, worker)
            self.jobs += 1
            yield index, result

    def info(self) -> dict:
        threads = self.threads if self.threads is not None else torch.get_num_threads()
        return {"backend": "local", "workers": 1, "address": None, "devices": [self.device], "threads_per_worker": threads,
                "jobs": self.jobs}  # fmt: skip

    def close(self) -> None:
        pass


class _Worker:
    """A Ray actor: the teacher, the frames and a training context, set up once; trains jobs."""

    def __init__(self, teacher: nn.Module, start: Provenance, setup: TrainSetup, threads: int) -> None:
        torch.set_num_threads(threads)
        self.device = default_device()
        self.teacher, self.start = teacher.eval(), start
        self.context = training_context(setup, self.teacher, self.device)
        self.about = {"host": socket.gethostname(), "pid": os.getpid(), "device": self.device, "threads": torch.get_num_threads()}

    def describe(self) -> dict:
        return self.about

    def train(self, job: TrainJob) -> TrainResult:
        return train(job, self.teacher, self.start, self.context, self.about)


def _import_ray():
    try:
        import ray
    except ImportError:
        return None
    return ray


def local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class RayPool:
    """``workers`` Ray actors, each holding the teacher and a training context; jobs go to whichever
    is idle, and results come back as they finish. Ray starts (locally, or connected to
    ``address``) on the first job, so a search that trains nothing never starts it and the latency
    probe before training runs without Ray's processes; :meth:`close` stops it again (the actors,
    and Ray itself where this pool started it)."""

    backend = "ray"
    parallel = True

    def __init__(
        self, teacher: nn.Module, start: Provenance, setup: TrainSetup, workers: int, address: str | None = None,
        threads: int | None = None,
    ) -> None:  # fmt: skip
        self.teacher, self.start, self.setup = teacher, start, setup
        self.workers, self.address, self.threads = workers, address, threads
        self.actors: list = []
        self.about: list[dict] = []
        self.started_ray = False
        self.jobs = 0
        self.start_s = 0.0  # seconds starting Ray and placing the workers

    def _start(self) -> None:
        began = time.perf_counter()
        ray = _import_ray()
        if ray is None:
            raise CompressbenchError(f"--workers {self.workers} trains on Ray, which is not installed here; {INSTALL_HINT}")
        threads = self.threads or max(1, local_cpus() // self.workers)
        if not ray.is_initialized():
            local = self.address is None
            try:
                ray.init(
                    address=self.address, num_cpus=max(local_cpus(), self.workers * threads) if local else None,
                    include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                )  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at --ray-address {self.address}" if self.address else "a local Ray"
                raise CompressbenchError(f"cannot start {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            self.started_ray = True
        if self.address is not None and self.threads is None:  # a cluster: its CPUs shared among the workers
            threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // self.workers)
        gpus = ray.cluster_resources().get("GPU", 0) / self.workers
        gpus = math.floor(gpus) if gpus >= 1 else gpus
        actor = ray.remote(_Worker).options(num_cpus=threads, num_gpus=gpus)
        teacher = ray.put(self.teacher)
        self.actors = [actor.remote(teacher, self.start, self.setup, threads) for _ in range(self.workers)]
        try:
            self.about = ray.get([a.describe.remote() for a in self.actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise CompressbenchError(
                f"Ray did not place {self.workers} workers of {threads} CPU(s) each within {START_TIMEOUT_S} s "
                f"({ray.cluster_resources().get('CPU', 0):g} CPUs in the cluster); lower --workers or give --train-threads 1"
            ) from None
        self.start_s = time.perf_counter() - began

    def run(self, jobs: list[TrainJob]) -> Iterator[tuple[int, TrainResult]]:
        if not jobs:
            return
        if not self.actors:
            self._start()
        import ray

        queue = list(enumerate(jobs))
        idle = list(self.actors)
        pending: dict = {}
        while queue or pending:
            while queue and idle:
                index, job = queue.pop(0)
                actor = idle.pop(0)
                pending[actor.train.remote(job)] = (index, actor)
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index, actor = pending.pop(ref)
                idle.append(actor)
                yield index, self._result(ray, ref)
                self.jobs += 1

    @staticmethod
    def _result(ray, ref) -> TrainResult:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            if isinstance(cause, CompressbenchError):
                raise CompressbenchError(str(cause.args[0]) if cause.args else str(cause)) from None
            message = str(cause).splitlines()[0] if str(cause) else ""
            raise CompressbenchError(f"a Ray worker failed while training: {type(cause).__name__}: {message}") from None
        except ray.exceptions.RayActorError as exc:
            raise CompressbenchError(f"a Ray worker died while training ({type(exc).__name__}); lower --workers or check the cluster") from None

    def info(self) -> dict:
        return {
            "backend": "ray", "workers": self.workers, "address": self.address,
            "devices": [a["device"] for a in self.about],
            "threads_per_worker": self.about[0]["threads"] if self.about else self.threads,
            "hosts": sorted({a["host"] for a in self.about}), "jobs": self.jobs, "start_s": round(self.start_s, 3),
        }  # fmt: skip

    def close(self) -> None:
        if not self.actors and not self.started_ray:
            return
        ray = _import_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False


def check_workers(workers, address: str | None, threads) -> None:
    """Refuse, before any work, a worker count, thread count or Ray set-up that cannot run."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CompressbenchError(f"--workers must be a positive integer (1: train in this process), got {workers!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise CompressbenchError(f"--train-threads must be a positive integer, got {threads!r}")
    if address is not None and not str(address).strip():
        raise CompressbenchError("--ray-address is empty; give a Ray cluster's address (e.g. ray://head:10001 or auto)")
    if (workers > 1 or address is not None) and _import_ray() is None:
        flag = f"--workers {workers}" if workers > 1 else f"--ray-address {address}"
        raise CompressbenchError(f"{flag} trains on Ray, which is not installed here; {INSTALL_HINT}")


def make_pool(
    teacher: nn.Module, start: Provenance, setup: TrainSetup, context: CompressionContext, workers: int = 1,
    address: str | None = None, threads: int | None = None,
) -> LocalPool | RayPool:  # fmt: skip
    """One worker and no cluster: :class:`LocalPool` (with the search's own ``context``); else :class:`RayPool`."""
    if workers == 1 and address is None:
        return LocalPool(teacher, start, context, threads)
    return RayPool(teacher, start, setup, workers, address, threads)


__all__ = ["LocalPool", "RayPool", "TrainJob", "TrainResult", "TrainSetup", "check_workers", "make_pool", "train"]
