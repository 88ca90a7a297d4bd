"""Per-frame random generators from disjoint seed streams, so splits never share a frame."""

from __future__ import annotations

import numpy as np
import torch

from compressbench.data.batch import SPLITS
from compressbench.errors import CompressbenchError

_PROJECT_TAG = 0x5EED_FACE  # keeps these streams apart from any other use of SeedSequence(seed)
INDEPENDENT = 0  # stream kind: one frame per index
CLIP = 1  # stream kind: one sequence clip per index


def check_split(split: str) -> int:
    """The split's position in SPLITS; a CompressbenchError for an unknown split."""
    if split not in SPLITS:
        raise CompressbenchError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return SPLITS.index(split)


def check_seed(seed: int) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise CompressbenchError(f"seed must be a non-negative integer, got {seed!r}")


def generator(split: str, seed: int, kind: int, index: int) -> torch.Generator:
    """A torch generator for item ``index`` of stream (split, seed, kind).

    numpy's SeedSequence hashes the whole key, so different (split, seed, kind, index) tuples give
    statistically independent streams; a frame's content never depends on its batch.
    """
    key = np.random.SeedSequence(entropy=[_PROJECT_TAG, check_split(split), int(seed), kind], spawn_key=(int(index),))
    state = int(key.generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(state)
