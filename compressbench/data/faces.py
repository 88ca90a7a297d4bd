"""A procedural canonical face: identity and expression parameters -> landmarks and an RGBA texture.

The face lives in canonical coordinates [-1, 1]^2 (x right, y down), centred at the origin,
about 0.8 wide. Every landmark is the centre of a symmetric marker shape drawn on the face
(see :data:`LANDMARK_NAMES`), so the feature a detector sees is centred exactly on the label.
"Left" means smaller x, i.e. the subject's right side when the face looks at the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compressbench.data.canvas import Canvas, below, circle, ellipse
from compressbench.data.params import ParamSpace, palette

LANDMARK_NAMES = (
    "left_eye",  # 0: eye centre (iris centre; the lash line when blinking)
    "right_eye",  # 1
    "nose_tip",  # 2: the darker disc at the tip of the nose
    "mouth_left",  # 3: dark dot at the left mouth corner
    "mouth_right",  # 4: dark dot at the right mouth corner
    "left_brow",  # 5: brow centre
    "right_brow",  # 6
    "mouth_centre",  # 7: centre of the lips (moves down as the jaw opens)
    "left_ear",  # 8: centre of the dark inner ear
    "right_ear",  # 9
    "chin",  # 10: the shadow dimple on the chin
)
MAX_KP = len(LANDMARK_NAMES)

IDENTITY = ParamSpace.of(
    face_rx=(0.36, 0.44),
    face_ry=(0.48, 0.56),
    skin_tone=(0, 1),
    skin_r=(-0.04, 0.04),
    skin_g=(-0.04, 0.04),
    skin_b=(-0.04, 0.04),
    shade=(0.1, 0.35),
    hair_tone=(0, 1),
    hair_width=(1.04, 1.2),
    hair_height=(0.95, 1.1),
    hair_lift=(0.06, 0.16),
    hairline=(-0.8, -0.66),
    hairline_curve=(0.0, 0.6),
    eye_dx=(0.14, 0.18),
    eye_y=(-0.12, -0.05),
    eye_rx=(0.06, 0.08),
    eye_ratio=(0.45, 0.6),
    iris_ratio=(0.4, 0.52),
    iris_tone=(0, 1),
    brow_gap=(0.075, 0.1),
    brow_rx=(0.055, 0.08),
    brow_ry=(0.012, 0.02),
    brow_tilt=(-0.2, 0.25),
    nose_y=(0.07, 0.13),
    nose_r=(0.022, 0.032),
    mouth_y=(0.22, 0.29),
    mouth_rx=(0.09, 0.12),
    lip_ry=(0.02, 0.03),
    lip_tone=(0, 1),
    ear_y=(-0.06, 0.06),
    ear_rx=(0.04, 0.055),
    ear_ry=(0.075, 0.095),
    chin_rx=(0.03, 0.045),
    neck_w=(0.45, 0.65),
    shirt_top=(0.6, 0.75),
    shirt_rx=(0.8, 1.1),
    shirt_r=(0.05, 0.9),
    shirt_g=(0.05, 0.9),
    shirt_b=(0.05, 0.9),
)

EXPRESSION = ParamSpace.of(
    yaw=(-1, 1),
    pitch=(-1, 1),
    eye_open=(0.12, 1.0),
    mouth_open=(0.0, 1.0),
    brow_raise=(-0.01, 0.02),
    smile=(0, 1),
)

SKIN = [(0.33, 0.22, 0.16), (0.55, 0.38, 0.28), (0.78, 0.58, 0.45), (0.93, 0.78, 0.67), (0.98, 0.87, 0.8)]
HAIR = [
    (0.06, 0.05, 0.05),
    (0.25, 0.15, 0.08),
    (0.5, 0.33, 0.18),
    (0.8, 0.65, 0.38),
    (0.6, 0.6, 0.6),
    (0.55, 0.18, 0.08),
]
IRIS = [(0.1, 0.07, 0.05), (0.3, 0.17, 0.08), (0.45, 0.3, 0.15), (0.3, 0.45, 0.25), (0.25, 0.45, 0.7)]
LIP = (0.68, 0.2, 0.25)
SCLERA = (0.94, 0.92, 0.88)
LASH = (0.08, 0.06, 0.06)
PUPIL = (0.02, 0.02, 0.02)
MOUTH_INSIDE = (0.2, 0.04, 0.05)

# How far each feature slides per unit of yaw / pitch (a crude stand-in for head rotation in depth:
# features nearer the camera move more).
_YAW = {"eye": 0.05, "brow": 0.045, "nose": 0.09, "mouth": 0.05, "chin": 0.03}
_PITCH = {"eye": 0.02, "brow": 0.02, "nose": 0.035, "mouth": 0.025, "chin": 0.015}
JAW_DROP = 0.05  # lower-lip travel at mouth_open = 1
CORNER_RADIUS = 0.014
LASH_WIDTH = 0.008
BRIDGE_SOFTNESS = 0.02  # canonical units, so the nose shadow looks the same at every size
EAR_INNER = (0.45, 0.5)  # inner-ear radii as fractions of the outer ear
NECK_TOP = 0.1
CHIN_RY = 0.013


@dataclass(frozen=True)
class Marker:
    """An ellipse (B,) centred on a landmark; its coverage is what the detector should find."""

    cx: torch.Tensor
    cy: torch.Tensor
    rx: torch.Tensor
    ry: torch.Tensor
    angle: torch.Tensor | None = None


def _face_half_width(face: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    return face["face_rx"] * torch.sqrt((1 - (y / face["face_ry"]) ** 2).clamp_min(0))


def markers(face: dict[str, torch.Tensor]) -> list[Marker]:
    """The :data:`MAX_KP` landmark markers, in :data:`LANDMARK_NAMES` order, for identity+expression ``face``."""
    yaw, pitch = face["yaw"], face["pitch"]

    def shift(feature: str) -> tuple[torch.Tensor, torch.Tensor]:
        return _YAW[feature] * yaw, _PITCH[feature] * pitch

    eye_sx, eye_sy = shift("eye")
    eye_y = face["eye_y"] + eye_sy
    eyes = []
    for side in (-1, 1):
        rx = face["eye_rx"] * (1 - side * 0.12 * yaw)  # the eye turning away looks narrower
        ry = face["eye_rx"] * face["eye_ratio"] * face["eye_open"]
        eyes.append(Marker(side * face["eye_dx"] + eye_sx, eye_y, rx + LASH_WIDTH, ry + LASH_WIDTH))
    nose_sx, nose_sy = shift("nose")
    nose = Marker(nose_sx, face["nose_y"] + nose_sy, face["nose_r"], face["nose_r"])
    mouth_sx, mouth_sy = shift("mouth")
    half_width = face["mouth_rx"] * (1 + 0.15 * face["smile"])
    drop = JAW_DROP * face["mouth_open"]
    mouth_y = face["mouth_y"] + mouth_sy + drop / 2  # the upper lip stays, the lower lip drops
    corner = torch.full_like(yaw, CORNER_RADIUS)
    corners = [Marker(mouth_sx + side * half_width, mouth_y, corner, corner) for side in (-1, 1)]
    lips = Marker(mouth_sx, mouth_y, half_width, face["lip_ry"] + drop / 2)
    brow_sx, brow_sy = shift("brow")
    brow_y = eye_y - face["brow_gap"] - face["brow_raise"] + brow_sy
    brows = [
        Marker(side * face["eye_dx"] + brow_sx, brow_y, face["brow_rx"], face["brow_ry"], side * face["brow_tilt"])
        for side in (-1, 1)
    ]
    ears = []
    for side in (-1, 1):
        # the inner ear's edge sits 0.1 ear widths + 0.012 outside the face outline, never covered by it
        cx = side * (_face_half_width(face, face["ear_y"]) + (EAR_INNER[0] + 0.1) * face["ear_rx"] + 0.012)
        ears.append(Marker(cx, face["ear_y"], EAR_INNER[0] * face["ear_rx"], EAR_INNER[1] * face["ear_ry"]))
    chin_sx, chin_sy = shift("chin")
    chin = Marker(chin_sx, 0.88 * face["face_ry"] + chin_sy, face["chin_rx"], torch.full_like(yaw, CHIN_RY))
    return [eyes[0], eyes[1], nose, corners[0], corners[1], brows[0], brows[1], lips, ears[0], ears[1], chin]


def canonical_landmarks(face: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, MAX_KP, 2) canonical landmark positions (x, y)."""
    return torch.stack([torch.stack([m.cx, m.cy], -1) for m in markers(face)], 1)


def colours(face: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(B, 3) paint colours of every part of the face, by part name."""
    jitter = torch.stack([face["skin_r"], face["skin_g"], face["skin_b"]], -1)
    skin = (palette(face["skin_tone"], SKIN) + jitter).clamp(0, 1)
    hair = palette(face["hair_tone"], HAIR)
    lip_mix = (0.45 + 0.3 * face["lip_tone"])[:, None]
    lip = 0.9 * (skin * (1 - lip_mix) + torch.tensor(LIP) * lip_mix)
    fixed = {"sclera": SCLERA, "lash": LASH, "pupil": PUPIL, "inside": MOUTH_INSIDE}
    return {
        "skin": skin,
        "hair": hair,
        "brow": hair * 0.5,
        "iris": palette(face["iris_tone"], IRIS),
        "nose_tip": skin * 0.7,
        "ear_inner": skin * 0.5,
        "chin": skin * 0.65,
        "lip": lip,
        "corner": lip * 0.45,
        "shirt": torch.stack([face["shirt_r"], face["shirt_g"], face["shirt_b"]], -1),
    } | {name: torch.tensor(rgb).expand_as(skin) for name, rgb in fixed.items()}


def _col(value: torch.Tensor) -> torch.Tensor:
    return value[:, None, None, None]


def _paint_body(canvas: Canvas, face: dict[str, torch.Tensor], col: dict[str, torch.Tensor]) -> None:
    """Shirt and neck; both run off the bottom edge (the renderer samples with border padding)."""
    edge = canvas.edge
    win = canvas.window(-1, 1, float(face["shirt_top"].min()), 1)
    canvas.paint(win, ellipse(win, 0.0, face["shirt_top"] + 1.0, face["shirt_rx"], 1.0, edge), col["shirt"])
    neck_w = face["neck_w"] * face["face_rx"]
    win = canvas.window(-float(neck_w.max()), float(neck_w.max()), NECK_TOP, 1)
    neck = (0.5 + (_col(neck_w) - win.x.abs()) / edge).clamp(0, 1) * below(win, NECK_TOP, edge)
    canvas.paint(win, neck, col["skin"] * 0.8)


def _paint_head(
    canvas: Canvas, face: dict[str, torch.Tensor], col: dict[str, torch.Tensor], ears: list[Marker]
) -> None:
    """Hair behind the head, the ears, the face with darker edges, then the fringe over the forehead."""
    edge, skin = canvas.edge, col["skin"]
    hair_cy = -face["hair_lift"] * face["face_ry"]
    hair_rx, hair_ry = face["face_rx"] * face["hair_width"], face["face_ry"] * face["hair_height"]
    win = canvas.around(torch.zeros_like(hair_cy), hair_cy, hair_rx, hair_ry)
    canvas.paint(win, ellipse(win, 0.0, hair_cy, hair_rx, hair_ry, edge), col["hair"])
    for ear in ears:
        outer_rx, outer_ry = ear.rx / EAR_INNER[0], ear.ry / EAR_INNER[1]
        win = canvas.around(ear.cx, ear.cy, outer_rx, outer_ry)
        canvas.paint(win, ellipse(win, ear.cx, ear.cy, outer_rx, outer_ry, edge), skin * 0.9)
        canvas.paint(win, ellipse(win, ear.cx, ear.cy, ear.rx, ear.ry, edge), col["ear_inner"])
    rx, ry = face["face_rx"], face["face_ry"]
    win = canvas.around(torch.zeros_like(rx), torch.zeros_like(ry), rx, ry)
    cover = ellipse(win, 0.0, 0.0, rx, ry, edge)
    radial = ((win.x / _col(rx)) ** 2 + (win.y / _col(ry)) ** 2).clamp(max=1)
    canvas.paint(win, cover, skin[:, :, None, None] * (1 - _col(face["shade"]) * radial**2))
    # the hairline rises towards the temples, so the fringe never reaches the brows
    hairline = _col(face["hairline"] * ry) - _col(face["hairline_curve"]) * win.x**2
    canvas.paint(win, cover * (0.5 + (hairline - win.y) / edge).clamp(0, 1), col["hair"])


def _paint_nose(canvas: Canvas, nose: Marker, eye_y: torch.Tensor, col: dict[str, torch.Tensor]) -> None:
    """A soft bridge shadow from the eyes down, the tip disc, two nostrils."""
    edge, skin = canvas.edge, col["skin"]
    bridge_cy, bridge_ry = (eye_y + nose.cy) / 2, (nose.cy - eye_y) / 2
    win = canvas.around(nose.cx, bridge_cy, 0.03 + BRIDGE_SOFTNESS, bridge_ry + BRIDGE_SOFTNESS)
    bridge = ellipse(win, nose.cx, bridge_cy, torch.full_like(nose.cx, 0.03), bridge_ry, BRIDGE_SOFTNESS)
    canvas.paint(win, 0.5 * bridge, skin * 0.85)
    r = nose.rx
    win = canvas.around(nose.cx, nose.cy, 2.2 * r, 1.5 * r)
    canvas.paint(win, circle(win, nose.cx, nose.cy, r, edge), col["nose_tip"])
    for side in (-1, 1):
        nostril = ellipse(win, nose.cx + side * 1.1 * r, nose.cy + 0.6 * r, 0.45 * r, 0.28 * r, edge)
        canvas.paint(win, nostril, skin * 0.3)


def _paint_eyes(
    canvas: Canvas, face: dict[str, torch.Tensor], col: dict[str, torch.Tensor], eyes: list[Marker]
) -> None:
    """A dark lash ellipse, the white inside it, then iris and pupil clipped to the white."""
    edge = canvas.edge
    iris_r = face["eye_rx"] * face["iris_ratio"]
    for eye in eyes:
        win = canvas.around(eye.cx, eye.cy, eye.rx, face["eye_rx"] + LASH_WIDTH)
        canvas.paint(win, ellipse(win, eye.cx, eye.cy, eye.rx, eye.ry, edge), col["lash"])
        white = ellipse(win, eye.cx, eye.cy, eye.rx - LASH_WIDTH, eye.ry - LASH_WIDTH, edge)
        canvas.paint(win, white, col["sclera"])
        canvas.paint(win, circle(win, eye.cx, eye.cy, iris_r, edge) * white, col["iris"])
        canvas.paint(win, circle(win, eye.cx, eye.cy, 0.45 * iris_r, edge) * white, col["pupil"])


def _paint_mouth(
    canvas: Canvas, face: dict[str, torch.Tensor], col: dict[str, torch.Tensor], lips: Marker, corners: list[Marker]
) -> None:
    """Lips, the dark opening (a thin line when closed), and a dark dot at each corner."""
    edge = canvas.edge
    win = canvas.around(lips.cx, lips.cy, lips.rx + 2 * CORNER_RADIUS, lips.ry)
    canvas.paint(win, ellipse(win, lips.cx, lips.cy, lips.rx, lips.ry, edge), col["lip"])
    inside_ry = 0.006 + JAW_DROP * 0.8 * face["mouth_open"] / 2
    canvas.paint(win, ellipse(win, lips.cx, lips.cy, 0.8 * lips.rx, inside_ry, edge), col["inside"])
    for corner in corners:
        canvas.paint(win, circle(win, corner.cx, corner.cy, corner.rx, edge), col["corner"])


def _paint_marker(canvas: Canvas, marker: Marker, colour: torch.Tensor) -> None:
    win = canvas.around(marker.cx, marker.cy, torch.maximum(marker.rx, marker.ry), torch.maximum(marker.rx, marker.ry))
    canvas.paint(win, ellipse(win, marker.cx, marker.cy, marker.rx, marker.ry, canvas.edge, angle=marker.angle), colour)


def render_face(face: dict[str, torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Premultiplied colour (B, 3, size, size) and alpha (B, 1, size, size) of the canonical face,
    painted back to front."""
    canvas = Canvas(face["yaw"].shape[0], size)
    col = colours(face)
    marks = markers(face)
    _paint_body(canvas, face, col)
    _paint_head(canvas, face, col, ears=marks[8:10])
    _paint_nose(canvas, marks[2], marks[0].cy, col)
    _paint_eyes(canvas, face, col, eyes=marks[0:2])
    for brow in marks[5:7]:
        _paint_marker(canvas, brow, col["brow"])
    _paint_mouth(canvas, face, col, lips=marks[7], corners=marks[3:5])
    _paint_marker(canvas, marks[10], col["chin"])
    return canvas.colour, canvas.alpha


def marker_masks(face: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """(B, MAX_KP, size, size) coverage of each landmark's marker shape alone (for checking labels)."""
    batch = face["yaw"].shape[0]
    canvas = Canvas(batch, size)
    win = canvas.full()
    return torch.cat([ellipse(win, m.cx, m.cy, m.rx, m.ry, canvas.edge, angle=m.angle) for m in markers(face)], 1)
