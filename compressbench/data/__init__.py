"""Frames for training and evaluation: synthetic face-motion frames with exact landmarks and
jacobians, and user image folders / videos. See ``synthetic.py`` for the generator's design."""

from compressbench.data.batch import SPLITS, FrameBatch
from compressbench.data.faces import LANDMARK_NAMES, MAX_KP
from compressbench.data.frames import load_frames
from compressbench.data.holdout import FrameSource
from compressbench.data.sources import SYNTHETIC, frames_for
from compressbench.data.synthetic import synthetic_frames, synthetic_stream

__all__ = [
    "FrameSource",
    "LANDMARK_NAMES",
    "MAX_KP",
    "SPLITS",
    "SYNTHETIC",
    "FrameBatch",
    "frames_for",
    "load_frames",
    "synthetic_frames",
    "synthetic_stream",
]
