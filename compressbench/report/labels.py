"""Point labels on a matplotlib plot that never overlap each other or leave the figure unreadable.

adjustText moves the labels away from each other and from the points; a final pass then stacks
any labels that still touch (adjustText minimises overlap, it does not promise none), and every
label that ended up away from its point gets a thin leader line back to it.
"""

from __future__ import annotations

import numpy as np

LEADER_MIN_PX = 6.0  # a label this close to its point needs no line
GAP_PX = 1.0  # space kept between two label boxes


def _boxes(ax, texts) -> list:
    renderer = ax.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer=renderer).expanded(1.0, 1.0) for t in texts]


def overlapping_pairs(ax, texts) -> list[tuple[int, int]]:
    """Index pairs of labels whose boxes (in display pixels) overlap."""
    boxes = _boxes(ax, texts)
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def _separate(ax, texts, max_rounds: int = 200) -> None:
    """Push the later label of each overlapping pair straight down (or up at the bottom) until no
    two boxes touch; positions move in display pixels and are written back in data coordinates."""
    to_data = ax.transData.inverted()
    for _ in range(max_rounds):
        pairs = overlapping_pairs(ax, texts)
        if not pairs:
            return
        boxes = _boxes(ax, texts)
        i, j = pairs[0]
        upper, lower = (i, j) if boxes[i].y0 >= boxes[j].y0 else (j, i)
        shift = boxes[lower].y1 - boxes[upper].y0 + GAP_PX  # move `lower` just below `upper`
        x, y = ax.transData.transform(texts[lower].get_position())
        texts[lower].set_position(to_data.transform((x, y - shift)))


def place_labels(ax, xs, ys, labels, fontsize: float = 7) -> list:
    """Label each point (xs[i], ys[i]) with labels[i] so no two labels overlap; returns the Text
    objects. Labels away from their point are joined to it by a thin grey leader line."""
    from adjustText import adjust_text

    ax.set_xlim(ax.get_xlim())  # freeze the axes: a later autoscale would move placed labels together
    ax.set_ylim(ax.get_ylim())
    ax.set_autoscale_on(False)
    texts = [ax.text(x, y, label, fontsize=fontsize, zorder=4) for x, y, label in zip(xs, ys, labels, strict=True)]
    if not texts:
        return texts
    ax.figure.canvas.draw()
    adjust_text(texts, x=np.asarray(xs, dtype=float), y=np.asarray(ys, dtype=float), ax=ax, expand=(1.15, 1.3))
    _separate(ax, texts)
    for text, x, y in zip(texts, xs, ys, strict=True):
        box = _boxes(ax, [text])[0]
        px, py = ax.transData.transform((x, y))
        nearest = (min(max(px, box.x0), box.x1), min(max(py, box.y0), box.y1))
        if np.hypot(nearest[0] - px, nearest[1] - py) > LEADER_MIN_PX:
            end = ax.transData.inverted().transform(nearest)
            ax.plot([x, end[0]], [y, end[1]], color="0.55", lw=0.6, zorder=2)
    return texts
