"""FOMM's own animation with the exported keypoint detector in place of FOMM's.

    python benchmarks/fomm_demo.py --fomm ../first-order-model --config ../first-order-model/config/vox-256.yaml \\
        --checkpoint vox-cpk.pth.tar --export teacher-ov --source face.png --driving driving.mp4 --result result.mp4

``--fomm`` is a checkout of AliaksandrSiarohin/first-order-model (with its requirements installed:
scikit-image, imageio, ...). The script puts the checkout first on ``sys.path`` and imports FOMM's
``demo.py`` as FOMM's own demo runs it: ``load_checkpoints(config_path, checkpoint_path, cpu=True)``
builds FOMM's generator and keypoint detector from the checkpoint, and
``make_animation(source_image, driving_video, generator, kp_detector, relative, adapt_movement_scale,
cpu=True)`` animates the source image with the driving video. The keypoint detector passed to it is
:class:`compressbench.fomm.ExportedKPDetector` over ``--export`` (a folder ``compressbench export``
wrote: OpenVINO IR, ONNX or ExecuTorch), so FOMM's generator, dense-motion network and relative
keypoint transfer run unchanged on what was deployed.

It writes ``--result`` (a video, through imageio, at the driving video's frame rate) and, beside it,
``--report`` (default: the result's name with ``.json``): the exported detector's keypoints against
FOMM's own detector's on the same frames (the source image and every driving frame), as AKD in pixels
of the frame (mean and worst frame) and the mean jacobian difference. Frames are resized to the
side the export was compiled for (FOMM's demo resizes to 256 x 256).

Every problem is one line on stderr and exit code 2 (no traceback); nothing is written then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from compressbench.errors import CompressbenchError
from compressbench.fomm import ExportedKPDetector
from compressbench.metrics import akd_px, jacobian_error

FOMM_REPOSITORY = "AliaksandrSiarohin/first-order-model"
# modules FOMM's demo.py imports whose pip package is named otherwise
PIP_NAMES = {"skimage": "scikit-image", "yaml": "pyyaml", "sklearn": "scikit-learn", "cv2": "opencv-python"}
DEFAULT_FPS = 25.0  # for a driving video whose format records no frame rate (e.g. a GIF)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``error: ...``) and exit code 2, as compressbench's."""

    def error(self, message: str) -> None:
        raise CompressbenchError(f"{message} (see --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description="FOMM's animation with an exported keypoint detector in place of FOMM's.")
    parser.add_argument("--fomm", type=Path, help=f"a checkout of {FOMM_REPOSITORY} (its demo.py and modules/)")
    parser.add_argument("--config", type=Path, help="FOMM's YAML config, e.g. config/vox-256.yaml in the checkout")
    parser.add_argument("--checkpoint", type=Path, help="FOMM's checkpoint, e.g. vox-cpk.pth.tar (generator and kp_detector)")
    parser.add_argument("--export", type=Path, help="a folder compressbench export wrote (or a .onnx / .xml / .pte)")
    parser.add_argument("--source", type=Path, help="the source image (the face to animate)")
    parser.add_argument("--driving", type=Path, help="the driving video")
    parser.add_argument("--result", type=Path, default=Path("result.mp4"), help="the video to write (default result.mp4)")
    parser.add_argument("--report", type=Path, default=None, help="the keypoint comparison to write (default: --result with .json)")
    parser.add_argument("--absolute", action="store_true", help="absolute keypoint coordinates (default: relative, as FOMM's README runs it)")
    parser.add_argument("--no-adapt-scale", action="store_true", help="do not adapt the movement scale (default: adapt)")
    parser.add_argument("--threads", type=int, default=None, help="threads of the export's runtime (default: torch's)")
    args = parser.parse_args(argv)
    if args.fomm is None:
        raise CompressbenchError(f"--fomm PATH is required: a checkout of {FOMM_REPOSITORY} (git clone it, then pass its folder)")
    for option in ("config", "checkpoint", "export", "source", "driving"):
        if getattr(args, option) is None:
            raise CompressbenchError(f"--{option} PATH is required (see --help)")
    return args


def check_inputs(args: argparse.Namespace) -> None:
    """Every input exists and the checkout looks like FOMM's, before anything is imported or run."""
    fomm = args.fomm
    if not (fomm / "demo.py").is_file() or not (fomm / "modules" / "keypoint_detector.py").is_file():
        raise CompressbenchError(f"--fomm {fomm} is not a checkout of {FOMM_REPOSITORY} (no demo.py and modules/keypoint_detector.py)")
    for option in ("config", "checkpoint", "source", "driving"):
        path = getattr(args, option)
        if not path.is_file():
            raise CompressbenchError(f"--{option} {path} does not exist")
    if not args.export.exists():
        raise CompressbenchError(f"--export {args.export} does not exist; write one with 'compressbench export --out FOLDER'")
    for option in ("result", "report"):
        path = getattr(args, option)
        if path is not None and not path.parent.resolve().is_dir():
            raise CompressbenchError(f"--{option} {path}: folder {path.parent} does not exist")


class _YamlWithDefaultLoader:
    """FOMM's ``load_checkpoints`` calls ``yaml.load(f)`` without a Loader, which PyYAML 6 refuses;
    FOMM's demo module is given this stand-in, whose ``load`` defaults to ``yaml.SafeLoader`` (its
    configs are plain YAML). Everything else is PyYAML's."""

    def __init__(self, yaml_module) -> None:
        self._yaml = yaml_module

    def __getattr__(self, name: str):
        return getattr(self._yaml, name)

    def load(self, stream, Loader=None):  # PyYAML's own keyword name
        return self._yaml.load(stream, Loader=Loader or self._yaml.SafeLoader)


def import_fomm(checkout: Path):
    """FOMM's demo module, imported from ``checkout`` as FOMM's own demo runs (checkout first on sys.path)."""
    sys.path.insert(0, str(checkout.resolve()))
    try:
        import demo  # FOMM's demo.py: make_animation, load_checkpoints
        from demo import load_checkpoints, make_animation  # noqa: F401 (the interface this script relies on)
    except ImportError as exc:
        package = PIP_NAMES.get(exc.name, exc.name) if getattr(exc, "name", None) else None
        missing = f" (install FOMM's requirements, here: pip install {package})" if package else ""
        raise CompressbenchError(f"cannot import FOMM's demo.py from {checkout}: {exc}{missing}") from None
    if hasattr(demo, "yaml"):
        demo.yaml = _YamlWithDefaultLoader(demo.yaml)
    return demo


def read_frames(args: argparse.Namespace) -> tuple[np.ndarray, list[np.ndarray], float]:
    """The source image and the driving frames as float RGB in [0, 1] (H, W, 3), and the frame rate."""
    import imageio.v2 as imageio

    try:
        source = imageio.imread(args.source)
        reader = imageio.get_reader(args.driving)
        fps = float(reader.get_meta_data().get("fps") or DEFAULT_FPS)
        driving = []
        try:
            for frame in reader:
                driving.append(frame)
        except RuntimeError:  # as FOMM's demo: a video whose last frames cannot be decoded ends there
            pass
        reader.close()
    except (OSError, ValueError) as exc:
        raise CompressbenchError(f"cannot read the source image or the driving video: {exc}") from None
    if not driving:
        raise CompressbenchError(f"--driving {args.driving} holds no frames")
    return as_rgb(source), [as_rgb(frame) for frame in driving], fps


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A decoded image as float32 RGB in [0, 1], (H, W, 3) (grey repeated, alpha dropped)."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    dtype = array.dtype
    array = array[..., :3].astype(np.float32)
    return array / float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else array


def resized(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame`` resized to ``size`` x ``size`` (anti-aliased, as FOMM's demo resizes with scikit-image)."""
    if frame.shape[:2] == (size, size):
        return frame
    tensor = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


def keypoint_difference(frames: list[np.ndarray], exported, fomm_detector, size: int) -> dict:
    """The exported detector against FOMM's own on the same ``frames``: AKD in pixels of the frame
    (mean over frames and keypoints, and the worst frame's) and the mean jacobian difference."""
    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        ours = [exported(batch[i : i + 1]) for i in range(len(batch))]
        theirs = [fomm_detector(batch[i : i + 1]) for i in range(len(batch))]
    per_frame = [float(akd_px(o["value"].float(), t["value"].float(), size)) for o, t in zip(ours, theirs)]
    jacobians = [float(jacobian_error(o["jacobian"].float(), t["jacobian"].float()))
                 for o, t in zip(ours, theirs) if "jacobian" in t]  # fmt: skip
    return {
        "frames": len(frames),
        "frame_size_px": size,
        "akd_px": sum(per_frame) / len(per_frame),
        "akd_px_worst_frame": max(per_frame),
        "jacobian_error": sum(jacobians) / len(jacobians) if jacobians else None,
        "akd_px_per_frame": per_frame,
    }


def write_video(path: Path, predictions: list[np.ndarray], fps: float) -> None:
    """The animation as a video (imageio), written to a temporary name and renamed: no half-written file."""
    import imageio.v2 as imageio

    frames = [(np.clip(np.asarray(frame), 0, 1) * 255).round().astype(np.uint8) for frame in predictions]
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        imageio.mimsave(partial, frames, fps=fps)
        partial.replace(path)
    except (OSError, ValueError, RuntimeError) as exc:
        partial.unlink(missing_ok=True)
        raise CompressbenchError(f"cannot write --result {path}: {exc}") from None


def run(args: argparse.Namespace) -> dict:
    check_inputs(args)
    exported = ExportedKPDetector(args.export, threads=args.threads)
    size = exported.frame_size
    source, driving, fps = read_frames(args)  # before FOMM is loaded: a bad input fails fast
    source, driving = resized(source, size), [resized(frame, size) for frame in driving]
    demo = import_fomm(args.fomm)
    try:
        generator, fomm_detector = demo.load_checkpoints(config_path=str(args.config), checkpoint_path=str(args.checkpoint), cpu=True)
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise CompressbenchError(f"FOMM's load_checkpoints could not load {args.checkpoint} with {args.config}: {exc}") from None
    predictions = demo.make_animation(source, driving, generator, exported, relative=not args.absolute,
                                      adapt_movement_scale=not args.no_adapt_scale, cpu=True)  # fmt: skip
    difference = keypoint_difference([source, *driving], exported, fomm_detector, size)
    report = {
        "export": str(args.export), "runtime": exported.deployed.runtime, "fomm": str(args.fomm),
        "config": str(args.config), "checkpoint": str(args.checkpoint), "result": str(args.result), "fps": fps,
        "relative": not args.absolute, "adapt_movement_scale": not args.no_adapt_scale,
        "keypoints_vs_fomm": difference,
    }  # fmt: skip
    write_video(args.result, predictions, fps)
    report_path = args.report or args.result.with_suffix(".json")
    partial = report_path.with_name(f".{report_path.name}.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(report_path)
    print(
        f"wrote {args.result} ({len(predictions)} frames at {fps:g} fps, {size} px) and {report_path}: the export's keypoints "
        f"differ from FOMM's own detector by AKD {difference['akd_px']:.3f} px (worst frame {difference['akd_px_worst_frame']:.3f} px) "
        f"over {difference['frames']} frames",
        file=sys.stderr,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse_args(argv))
    except CompressbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
