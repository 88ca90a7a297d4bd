"""The machine a measurement ran on: a typed fingerprint parsed from /proc/cpuinfo and /proc/meminfo.

Latency only compares within one kind of machine. The fingerprint's ``key`` hashes what decides
whether two timings are comparable (CPU model, the ISA features that decide speed, cores available)
and nothing that changes between runs on the same machine (date, torch threads, memory in use).
Parsing takes text, so tests feed fixed samples and never read the real machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata

# ISA flags (as /proc/cpuinfo spells them) that change how fast convolutions and GEMMs run.
SPEED_FEATURES = (
    "avx2", "fma", "f16c",
    "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm",  # aarch64 ("Features" line)
)  # fmt: skip
RUNTIME_PACKAGES = ("onnxruntime", "openvino")

# oneDNN's dispatcher cap (ONEDNN_MAX_CPU_ISA, which OpenVINO's oneDNN and PyTorch's read too): a
# cap named here leaves only these features usable, so an AVX-512 CPU capped to AVX2 times what an
# AVX2-only CPU of the same cores and memory would. A cap not listed (SSE41, AVX, the AMX ones)
# keeps the features as /proc/cpuinfo gives them and still sets the fingerprint apart.
_AVX2 = ("avx2", "fma", "f16c")
_AVX512 = (*_AVX2, "avx512f", "avx512bw", "avx512vl")
ISA_CAPS: dict[str, tuple[str, ...]] = {
    "AVX2": _AVX2,
    "AVX2_VNNI": (*_AVX2, "avx_vnni"),
    "AVX512_CORE": _AVX512,
    "AVX512_CORE_VNNI": (*_AVX512, "avx512_vnni"),
    "AVX512_CORE_BF16": (*_AVX512, "avx512_vnni", "avx512_bf16"),
}
# PyTorch's own vectorised kernels (ATen) are capped by another variable, with other names.
ATEN_CAPABILITY = {"AVX2": "avx2", "AVX2_VNNI": "avx2"}
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
_MODEL_NOISE = re.compile(r"\((?:R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@\s*[\d.]+\s*GHz", re.IGNORECASE)


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says about the first processor."""

    model: str
    vendor: str
    flags: frozenset[str]
    logical_cpus: int


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model name, vendor, flags and processor count from /proc/cpuinfo text (x86 or aarch64)."""
    model = vendor = ""
    flags: frozenset[str] = frozenset()
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor":
            processors += 1
        elif key in ("model name", "hardware") and not model:
            model = value
        elif key in ("vendor_id", "cpu implementer") and not vendor:
            vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "0x41": "Arm"}.get(value, value)
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model or "unknown", vendor or "unknown", flags, processors)


def parse_meminfo_gb(text: str) -> float:
    """MemTotal from /proc/meminfo text, in GB (10^9 bytes); 0.0 when absent."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return round(int(parts[1]) * 1024 / 1e9, 1)  # the kernel's "kB" is KiB
    return 0.0


def short_model(model: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz' -> 'Intel Xeon Platinum 8480+'."""
    return " ".join(_MODEL_NOISE.sub(" ", model).split()) or model


def feature_summary(features: tuple[str, ...] | frozenset[str]) -> list[str]:
    """The speed-deciding features as a reader names them: AVX-512, VNNI, AMX-int8/bf16, ..."""
    have = set(features)
    parts = []
    if "avx512f" in have:
        parts.append("AVX-512")
    elif "avx2" in have:
        parts.append("AVX2")
    elif "asimd" in have:
        parts.append("NEON" + ("+SVE" if "sve" in have else ""))
    if have & {"avx512_vnni", "avx_vnni", "asimddp"}:
        parts.append("VNNI" if have & {"avx512_vnni", "avx_vnni"} else "dot-product")
    amx = [kind for kind in ("int8", "bf16") if f"amx_{kind}" in have]
    if amx:
        parts.append("AMX-" + "/".join(amx))
    if ("avx512_bf16" in have and "amx_bf16" not in have) or "bf16" in have:
        parts.append("bf16")
    if "avx512_fp16" in have:
        parts.append("fp16")
    return parts


def isa_cap_from(environ) -> str:
    """The oneDNN ISA cap ``environ`` sets ('AVX2'), '' when none (unset, ALL or DEFAULT)."""
    for variable in ISA_CAP_VARIABLES:
        value = str(environ.get(variable, "")).strip().upper()
        if value:
            return "" if value in ("ALL", "DEFAULT") else value
    return ""


def isa_cap_environment(cap: str) -> dict[str, str]:
    """The variables that cap both oneDNN (convolutions in OpenVINO and PyTorch) and PyTorch's ATen
    kernels to ``cap`` (a key of :data:`ISA_CAPS`); ValueError for an unknown cap."""
    name = cap.strip().upper()
    if name not in ISA_CAPS:
        raise ValueError(f"unknown ISA cap '{cap}'; known: {', '.join(c.lower() for c in ISA_CAPS)}")
    return {"ONEDNN_MAX_CPU_ISA": name, "ATEN_CPU_CAPABILITY": ATEN_CAPABILITY.get(name, "avx512")}


def capped_features(features: tuple[str, ...], cap: str) -> tuple[str, ...]:
    """The features kernels may use under ``cap`` (all of them for no cap or an unlisted one)."""
    allowed = ISA_CAPS.get(cap.upper()) if cap else None
    return features if allowed is None else tuple(f for f in features if f in allowed)


# Kernel names (OpenVINO's primitiveType, oneDNN's implementation) name their ISA: brgconv_avx512_I8,
# jit_avx2_I8, brgconv_avx512_amx_I8, jit:avx2_vnni, brg:avx512_core_vnni. Tags are tried most specific
# first; ranks follow ISA_CAPS' order (amx above them all). uni, ref and gemm name none.
_KERNEL_ISA_RANKS = (
    ("amx", 5), ("avx512_core_bf16", 4), ("avx512_core_vnni", 3), ("avx512", 2), ("avx2_vnni", 1), ("avx_vnni", 1),
    ("avx2", 0),
)  # fmt: skip
_CAP_RANKS = {cap: rank for rank, cap in enumerate(ISA_CAPS)}


def kernel_isa(kernel: str) -> str | None:
    """The ISA a kernel name says it uses (a tag of :data:`_KERNEL_ISA_RANKS`: 'avx512', 'avx2',
    'avx2_vnni', 'amx', ...), None when it names none."""
    name = kernel.lower()
    return next((tag for tag, _ in _KERNEL_ISA_RANKS if tag in name), None)


def kernel_above_cap(kernel: str, cap: str) -> bool:
    """True when ``kernel``'s name says it uses instructions ``cap`` (an :data:`ISA_CAPS` key) rules out."""
    tag = kernel_isa(kernel)
    if tag is None or cap.upper() not in _CAP_RANKS:
        return False
    return dict(_KERNEL_ISA_RANKS)[tag] > _CAP_RANKS[cap.upper()]


def runtime_versions() -> dict[str, str]:
    """Versions of the optional inference runtimes that are installed (without importing them)."""
    found = {}
    for package in RUNTIME_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class MachineFingerprint:
    """The CPU and software a timing ran on; ``key`` says whether two timings are comparable."""

    cpu_model: str
    vendor: str
    features: tuple[str, ...]  # the speed-deciding subset of the CPU's flags, in SPEED_FEATURES order
    cores: int  # CPUs this process may run on (its affinity mask), not the host's total
    logical_cpus: int
    memory_gb: float
    torch: str
    threads: int | None
    runtimes: tuple[tuple[str, str], ...] = field(default=())
    arch: str = ""
    isa_cap: str = ""  # ONEDNN_MAX_CPU_ISA when set: ``features`` are then what the cap leaves usable
    cpu_features: tuple[str, ...] = ()  # under a cap, the speed-deciding features the CPU itself has

    @property
    def key(self) -> str:
        """Hash of CPU model, features, cores and ISA cap: equal keys mean timings are comparable."""
        ident = {"cpu_model": self.cpu_model, "features": list(self.features), "cores": self.cores}
        if self.isa_cap:  # left out when unset, so keys recorded before caps existed still match
            ident["isa_cap"] = self.isa_cap
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """e.g. 'Intel Xeon (AVX-512, VNNI, AMX-int8/bf16), 2 cores', or under a cap
        'AMD EPYC (AVX2; capped by ONEDNN_MAX_CPU_ISA=AVX2 from AVX-512, VNNI, bf16), 2 cores'."""
        summary = ", ".join(feature_summary(self.features))
        if self.isa_cap:
            native = ", ".join(feature_summary(self.cpu_features)) or "its own ISA"
            summary = f"{summary or 'baseline ISA'}; capped by ONEDNN_MAX_CPU_ISA={self.isa_cap} from {native}"
        isa = f" ({summary})" if summary else ""
        return f"{short_model(self.cpu_model)}{isa}, {self.cores} core{'s' if self.cores != 1 else ''}"

    def has(self, *features: str) -> bool:
        """True when the CPU has any of ``features``."""
        return any(f in self.features for f in features)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["features"] = list(self.features)
        out["cpu_features"] = list(self.cpu_features)
        out["runtimes"] = dict(self.runtimes)
        out["key"] = self.key
        out["label"] = self.label
        return out

    @classmethod
    def from_dict(cls, data: dict) -> MachineFingerprint:
        return cls(
            cpu_model=str(data["cpu_model"]), vendor=str(data.get("vendor", "unknown")),
            features=tuple(data.get("features", ())), cores=int(data["cores"]),
            logical_cpus=int(data.get("logical_cpus", data["cores"])), memory_gb=float(data.get("memory_gb", 0.0)),
            torch=str(data.get("torch", "")), threads=data.get("threads"),
            runtimes=tuple(sorted(dict(data.get("runtimes", {})).items())), arch=str(data.get("arch", "")),
            isa_cap=str(data.get("isa_cap", "")), cpu_features=tuple(data.get("cpu_features", ())),
        )  # fmt: skip


def fingerprint_from_text(
    cpuinfo: str,
    meminfo: str = "",
    *,
    cores: int | None = None,
    threads: int | None = None,
    torch_version: str = "",
    runtimes: dict[str, str] | None = None,
    arch: str = "",
    isa_cap: str = "",
) -> MachineFingerprint:
    """A fingerprint from /proc texts and the given facts (tests pass fixed samples); ``isa_cap``
    is the ONEDNN_MAX_CPU_ISA value the process runs under ('' for none)."""
    info = parse_cpuinfo(cpuinfo)
    features = tuple(f for f in SPEED_FEATURES if f in info.flags)
    logical = info.logical_cpus or (cores or 0)
    cap = isa_cap.strip().upper()
    return MachineFingerprint(
        cpu_model=info.model, vendor=info.vendor, features=capped_features(features, cap),
        cores=cores if cores is not None else logical, logical_cpus=logical, memory_gb=parse_meminfo_gb(meminfo),
        torch=torch_version, threads=threads, runtimes=tuple(sorted((runtimes or {}).items())), arch=arch,
        isa_cap=cap, cpu_features=features if cap else (),
    )  # fmt: skip


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def available_cores() -> int:
    """CPUs this process may use (affinity mask; cgroup-pinned containers see fewer than the host)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@lru_cache(maxsize=1)
def _this_machine() -> MachineFingerprint:
    import torch

    cpuinfo = _read("/proc/cpuinfo")
    fp = fingerprint_from_text(
        cpuinfo, _read("/proc/meminfo"), cores=available_cores(), torch_version=str(torch.__version__),
        runtimes=runtime_versions(), arch=platform.machine(), isa_cap=isa_cap_from(os.environ),
    )  # fmt: skip
    if fp.cpu_model == "unknown":  # not Linux: the platform's own name is the best we have
        fp = MachineFingerprint(**{**fp.__dict__, "cpu_model": platform.processor() or platform.machine() or "unknown"})
    if fp.logical_cpus == 0:
        fp = MachineFingerprint(**{**fp.__dict__, "logical_cpus": os.cpu_count() or fp.cores})
    return fp


def this_machine(threads: int | None = None) -> MachineFingerprint:
    """This machine's fingerprint, with ``threads`` (torch's current count when None)."""
    import torch

    base = _this_machine()
    return MachineFingerprint(**{**base.__dict__, "threads": threads if threads is not None else torch.get_num_threads()})


def has_vnni() -> bool:
    """True when this x86 CPU multiplies u8 x s8 with VNNI (32-bit sums). Without it int8 kernels
    sum products in pairs into int16 (vpmaddubsw), which saturates with full-range 8-bit operands:
    PyTorch's x86 backend then uses 7-bit activations, ONNX Runtime's remedy is 7-bit weights."""
    return this_machine().has("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class MachineMatch:
    """How a measurement's machine and threads relate to a reference's (a baseline's)."""

    same_cpu: bool | None  # None: the reference carries no fingerprint (matched by CPU name at best)
    same_threads: bool
    notes: tuple[str, ...]

    @property
    def comparable(self) -> bool:
        """Latency can be gated only where the fingerprints are equal and the thread counts too. A
        reference without a fingerprint never is: one CPU name ("AMD EPYC") covers generations with
        different ISAs, and an AVX2 machine checked against an AVX-512 one's baseline read int8 as a
        33% regression."""
        return self.same_cpu is True and self.same_threads

    def to_dict(self) -> dict:
        return {"same_cpu": self.same_cpu, "same_threads": self.same_threads, "comparable": self.comparable, "notes": list(self.notes)}


def feature_difference(reference: MachineFingerprint, current: MachineFingerprint) -> str:
    """What sets two fingerprints apart, as a reader checks it: 'lacks avx512f, avx512_vnni; cores 8 vs 2'."""
    parts = []
    missing = [f for f in reference.features if f not in current.features]
    extra = [f for f in current.features if f not in reference.features]
    if missing:
        parts.append(f"this CPU lacks {', '.join(missing)}")
    if extra:
        parts.append(f"this CPU adds {', '.join(extra)}")
    if reference.isa_cap != current.isa_cap:
        parts.append(f"ISA cap {current.isa_cap or 'none'} here against {reference.isa_cap or 'none'}")
    if reference.cores != current.cores:
        parts.append(f"{current.cores} cores here against {reference.cores}")
    if reference.cpu_model != current.cpu_model:
        parts.append(f"model '{current.cpu_model}' against '{reference.cpu_model}'")
    return "; ".join(parts)


def compare_machines(reference: dict | None, current: MachineFingerprint, reference_threads: int | None, threads: int,
                     reference_cpu: str | None = None) -> MachineMatch:
    """Compare a reference's fingerprint dict (None for records of older versions) with ``current``."""
    notes = []
    if reference is None:
        same_cpu = False if reference_cpu and reference_cpu != current.cpu_model else None
        named = f"names '{reference_cpu}'" if reference_cpu else "names no CPU"
        notes.append(f"other CPU: the baseline {named} and carries no fingerprint (older compressbench), this is {current.label}; "
                     "a CPU name does not say which ISA ran, re-record it with 'compressbench baseline --add'")
    else:
        ref = MachineFingerprint.from_dict(reference)
        same_cpu = ref.key == current.key
        if not same_cpu:
            notes.append(f"other CPU: baseline recorded on {ref.label}, checked on {current.label} ({feature_difference(ref, current)})")
    same_threads = reference_threads is None or int(reference_threads) == int(threads)
    if not same_threads:
        notes.append(f"thread count differs: baseline recorded with {reference_threads} threads, checked with {threads}")
    return MachineMatch(same_cpu, same_threads, tuple(notes))
