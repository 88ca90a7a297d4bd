"""Pareto fronts and the choice of the best variant."""

from __future__ import annotations

from compressbench.metrics import fastest_within, pareto_front  # noqa: F401  (pareto_front: re-exported)


def best_variant(rows: list[dict], akd_budget_px: float = 1.0) -> str | None:
    """The fastest variant (not the reference row) within the AKD budget; None when none is
    (:func:`compressbench.metrics.fastest_within`, the rule the search and compress use too)."""
    row = fastest_within(rows, akd_budget_px)
    return row["variant"] if row is not None else None


def most_faithful(rows: list[dict]) -> dict | None:
    """The variant (not the reference row) with the lowest measured AKD."""
    candidates = [r for r in rows[1:] if r.get("akd_px") is not None]
    return min(candidates, key=lambda r: r["akd_px"]) if candidates else None
