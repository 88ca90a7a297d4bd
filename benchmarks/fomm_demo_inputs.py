"""Inputs for ``benchmarks/fomm_demo.py`` where FOMM's own checkpoint cannot be downloaded.

Writes, into ``--out``: ``vox-teacher.pth.tar``, a checkpoint in FOMM's format whose ``kp_detector``
is compressbench's trained default teacher (its state dict loads into FOMM's own ``KPDetector``
strictly: same names, same shapes) and whose ``generator`` is FOMM's ``OcclusionAwareGenerator``
with seeded random weights (the animation it draws is meaningless; the keypoints it is driven by are
the point); ``source.png`` and ``driving.mp4`` (25 fps), frames of compressbench's synthetic faces.

    python benchmarks/fomm_demo_inputs.py --fomm CHECKOUT --out DIR [--frames 33] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio
import numpy as np
import torch
import yaml

from compressbench import load_model
from compressbench.data import FrameSource


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fomm", type=Path, required=True, help="a checkout of AliaksandrSiarohin/first-order-model")
    parser.add_argument("--out", type=Path, required=True, help="folder for the checkpoint, source and driving video")
    parser.add_argument("--frames", type=int, default=33, help="source + driving frames (default 33)")
    parser.add_argument("--seed", type=int, default=7, help="synthetic frames' seed (default 7, not the benchmarks' 0)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.fomm))
    from modules.generator import OcclusionAwareGenerator  # FOMM's own modules
    from modules.keypoint_detector import KPDetector

    config = yaml.safe_load((args.fomm / "config" / "vox-256.yaml").read_text())["model_params"]
    torch.manual_seed(args.seed)
    generator = OcclusionAwareGenerator(**config["generator_params"], **config["common_params"])
    detector = KPDetector(**config["kp_detector_params"], **config["common_params"])
    detector.load_state_dict(load_model("teacher").state_dict(), strict=True)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": generator.state_dict(), "kp_detector": detector.state_dict()}, args.out / "vox-teacher.pth.tar")
    frames = FrameSource("synthetic", args.frames, args.seed, 256).evaluation()
    images = getattr(frames, "images", frames)
    video = (images.permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    imageio.imwrite(args.out / "source.png", video[0])
    imageio.mimsave(args.out / "driving.mp4", list(video[1:]), fps=25)
    print(f"wrote {args.out}/vox-teacher.pth.tar, source.png, driving.mp4 ({len(video) - 1} driving frames)")


if __name__ == "__main__":
    main()
