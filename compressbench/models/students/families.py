"""The student registry, and each student's registration as a model and a saved architecture.

Every family is registered as a model under its own name (width 1.0) and as ``<name>-0.5``
(half the channels everywhere, about a quarter of the MACs). Any other width is one call away
in Python (:func:`build_student`), and a saved student records its width, so
``load_model(path)`` rebuilds whatever width was trained without a registry entry per width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from compressbench.models.detector import DetectorConfig, KeypointDetector
from compressbench.models.registry import register_base_builder, register_model
from compressbench.models.students.edanet import EDANet
from compressbench.models.students.erfnet import ERFNet
from compressbench.models.students.esnet import ESNet
from compressbench.models.students.lednet import LEDNet
from compressbench.models.students.squeeze_unet import SqueezeUNet
from compressbench.registry import Registry

ARCHITECTURE = "student"
WIDTH_VARIANTS = (0.5,)
BUILDER_KEYS = ("student", "width", "config")


@dataclass(frozen=True)
class StudentSpec:
    """A student family: its predictor class ``(in_channels, width) -> nn.Module`` and a summary."""

    name: str
    predictor: Callable[..., nn.Module]
    description: str


STUDENTS: Registry[StudentSpec] = Registry("student")

for _spec in (  # registration order is irrelevant: names are listed sorted
    StudentSpec("squeeze-unet", SqueezeUNet, "Squeeze U-Net: fire modules with concat skips, 512x4x4 bottleneck"),
    StudentSpec("erfnet", ERFNet, "ERFNet: non-bottleneck-1D blocks, transposed-conv decoder, no skips"),
    StudentSpec("edanet", EDANet, "EDANet: dense asymmetric-conv EDA modules, bilinear+conv decoder, no skips"),
    StudentSpec("esnet", ESNet, "ESNet: factorised and parallel dilated conv units, symmetric decoder, no skips"),
    StudentSpec("lednet", LEDNet, "LEDNet: split-shuffle non-bottleneck units, attention-pyramid decoder, no skips"),
):
    STUDENTS.register(_spec.name, _spec)


def build_student(name: str, config: DetectorConfig | None = None, width: float = 1.0) -> KeypointDetector:
    """A keypoint detector with the student ``name``'s predictor at ``width`` (random weights).

    The detector's anti-alias, heatmap and jacobian heads are the teacher's; of ``config`` the
    students use ``num_channels`` and the head settings, not the hourglass sizes.
    """
    spec = STUDENTS.get(name)
    config = config or DetectorConfig()
    predictor = spec.predictor(in_channels=config.num_channels, width=width)
    predictor.student_name = spec.name  # lets student_builder_args describe a built detector
    return KeypointDetector(predictor, config)


def student_builder_args(detector: KeypointDetector) -> dict:
    """The JSON-like ``builder_args`` that rebuild ``detector`` with the ``student`` architecture."""
    name = getattr(detector.predictor, "student_name", None)
    if name is None:
        raise ValueError("this detector was not built by build_student, so its student family is unknown")
    return {"student": name, "width": detector.predictor.width, "config": detector.config.to_dict()}


@register_base_builder(ARCHITECTURE)
def rebuild_student(args: dict) -> KeypointDetector:
    """Base builder of saved students: ``{"student": name, "width": float, "config": DetectorConfig fields}``."""
    unknown = sorted(set(args) - set(BUILDER_KEYS))
    if unknown:
        raise ValueError(f"unknown builder argument(s) {', '.join(unknown)}; expected {', '.join(BUILDER_KEYS)}")
    if "student" not in args:
        raise ValueError("builder_args has no 'student' name")
    config = DetectorConfig(**(args.get("config") or {}))
    return build_student(args["student"], config, args.get("width", 1.0))


def _factory(name: str, width: float) -> Callable[[DetectorConfig], KeypointDetector]:
    def factory(config: DetectorConfig) -> KeypointDetector:
        return build_student(name, config, width)

    factory.__name__ = f"build_{name.replace('-', '_')}"
    return factory


def _register_models() -> None:
    for name in STUDENTS.names():
        spec = STUDENTS.get(name)
        register_model(name, f"student, {spec.description} (width 1)")(_factory(name, 1.0))
        for width in WIDTH_VARIANTS:
            register_model(f"{name}-{width:g}", f"student, {name} at width {width:g}")(_factory(name, width))


_register_models()
