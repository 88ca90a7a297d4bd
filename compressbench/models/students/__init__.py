"""Student predictors for distillation, registered as models (``compressbench models`` lists them).

Each student is a predictor inside the teacher's :class:`KeypointDetector`: same anti-alias,
heatmap, soft-argmax and jacobian heads; a ``.encoder`` whose output (or its last element) is the
bottleneck used for attention transfer; a ``width`` channel multiplier.
"""

from compressbench.models.students.families import (
    ARCHITECTURE,
    STUDENTS,
    WIDTH_VARIANTS,
    StudentSpec,
    build_student,
    rebuild_student,
    student_builder_args,
)

__all__ = [
    "ARCHITECTURE",
    "STUDENTS",
    "WIDTH_VARIANTS",
    "StudentSpec",
    "build_student",
    "rebuild_student",
    "student_builder_args",
]
