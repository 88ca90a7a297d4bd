"""Pareto fronts and the choice of the best variant."""

from __future__ import annotations

from compressbench.metrics import fastest_within


def pareto_front(rows: list[dict], x: str = "latency_ms", y: str = "akd_px") -> list[str]:
    """Names of the rows no other row beats on both ``x`` and ``y`` (lower is better)."""
    usable = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    front = []
    for r in usable:
        dominated = any(
            o[x] <= r[x] and o[y] <= r[y] and (o[x] < r[x] or o[y] < r[y]) for o in usable if o is not r
        )
        if not dominated:
            front.append(r["variant"])
    return front


def best_variant(rows: list[dict], akd_budget_px: float = 1.0) -> str | None:
    """The fastest variant (not the reference row) within the AKD budget; None when none is
    (:func:`compressbench.metrics.fastest_within`, the rule the search and compress use too)."""
    row = fastest_within(rows, akd_budget_px)
    return row["variant"] if row is not None else None


def most_faithful(rows: list[dict]) -> dict | None:
    """The variant (not the reference row) with the lowest measured AKD."""
    candidates = [r for r in rows[1:] if r.get("akd_px") is not None]
    return min(candidates, key=lambda r: r["akd_px"]) if candidates else None
