"""Check settings, read from ``[tool.compressbench]`` in pyproject.toml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomllib

from compressbench.errors import CompressbenchError

LATENCY_MODES = ("gate", "strict", "advisory")


@dataclass(frozen=True)
class CheckSettings:
    """How a check measures and decides; read from ``[tool.compressbench]`` in pyproject.toml."""

    max_slowdown: float = 0.10  # the minimum effect that counts as a regression
    alpha: float = 0.01  # significance level of the one-sided Mann-Whitney U test
    confidence: float = 0.95  # bootstrap interval
    bootstrap: int = 2000
    warmup: int = 20
    repeats: int = 100  # ~3 s for the teacher with its ruler; fewer rounds left a 15% slowdown inconclusive
    threads: int = 2
    batch: int = 1
    input_size: int = 256
    seed: int = 0
    # "gate": a latency regression fails the check when the baseline was recorded on this kind of
    # machine at this thread count, and is advisory otherwise; "strict": it fails the check always;
    # "advisory": it is reported, and only the exact gate on params/MACs decides the exit code
    latency: str = "gate"

    @classmethod
    def from_mapping(cls, values: dict) -> CheckSettings:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k.replace("-", "_"): v for k, v in values.items() if k.replace("-", "_") in known})


def read_settings(pyproject: str | Path = "pyproject.toml", **overrides) -> CheckSettings:
    """Settings from ``[tool.compressbench]`` of ``pyproject`` (when it exists), then ``overrides``."""
    values: dict = {}
    path = Path(pyproject)
    if path.is_file():
        try:
            values = tomllib.loads(path.read_text()).get("tool", {}).get("compressbench", {})
        except tomllib.TOMLDecodeError as exc:
            raise CompressbenchError(f"{path} is not valid TOML: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = CheckSettings.from_mapping(values)
    if settings.latency not in LATENCY_MODES:
        raise CompressbenchError(f"latency must be one of {', '.join(LATENCY_MODES)}, got {settings.latency!r}")
    return settings


def parse_fraction(text: str) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise CompressbenchError(f"expected a fraction such as 10% or 0.1, got {text!r}") from None
    if not 0 < value < 10:
        raise CompressbenchError(f"allowed slowdown must be positive (e.g. 10%), got {text!r}")
    return value
