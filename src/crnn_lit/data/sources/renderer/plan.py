"""What one sample will look like: the plan (every random decision) and the small random/colour helpers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion
MASK64 = (1 << 64) - 1  # seed and index each enter the planner's and the painter's random streams as 64 bits
PAD = 4  # blank pixels around the glyph canvas (room for borders and shadows): the plan's matrix assumes them


@dataclass(slots=True)
class Layout:
    """The part of a plan the image width depends on: what is written, in which face, and where."""

    text: str  # as drawn (a line's gaps may be two spaces wide)
    label: str  # the text with every whitespace run made one space (a word: the text itself)
    font: int  # index into WordRenderer.fonts
    size: int  # font size in px
    xs: list[int]  # pen x of each character of text (glyph-canvas coordinates, before PAD)
    ys: list[int]  # baseline offset of each character (canvas px, down; all 0 unless the baseline is curved)
    ink: tuple[int, int, int, int]  # x0, y0 (=font top, relative to baseline), x1, y1 of the text box
    matrix: tuple[float, ...]  # 3x3 row-major homography: glyph canvas -> output pixels (edge coords)
    width: int  # final image width
    border: int  # outline thickness in canvas px (0: none)
    shadow: tuple[int, int]  # shadow offset in canvas px ((0, 0): none)
    bold: int  # stroke thickening in canvas px (0: none)
    neighbours: list[tuple[str, int, int]]  # (text, x, baseline y) of other text cut by the crop (canvas px)


@dataclass(slots=True)
class RenderPlan:
    """Every decision about one sample; drawing it needs no further randomness except pixel noise."""

    layout: Layout  # text, face and geometry
    fg: tuple[float, float, float]  # text colour, RGB 0..1
    bg: tuple[float, float, float]  # background base colour, RGB 0..1
    bg_kind: str  # "flat" | "gradient" | "texture" | "photo"
    bg_amp: float  # max luminance deviation of the background from its base colour
    bg_angle: float  # gradient direction (radians)
    photo: tuple[int, float, float, float, bool]  # photo background: texture index, x, y (0..1), scale, mirrored
    edge: float  # a straight background step (sign border) at this height (0..1 of H); -1: none
    border_color: tuple[float, float, float]
    shadow_color: tuple[float, float, float]
    blur: float  # Gaussian blur sigma in output px (0: none)
    noise: float  # Gaussian noise sigma in 0..255 units (0: none)
    lowres: float  # down-sampling factor before upsampling back (1: none)
    jpeg: int  # JPEG quality (0: none)
    shade: tuple[float, float, float, float]  # uneven light: depth (0: none), direction (radians), edge position
    #   along it (0..1), edge softness (fraction of the image's extent along that direction)
    motion: tuple[float, float]  # motion blur: length in output px (0: none), direction (radians)


def uniform(r: random.Random, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return lo + (hi - lo) * r.random()


def below(r: random.Random, n: int) -> int:
    """Uniform integer in [0, n) from ``random()`` only (its output is stable across Python versions)."""
    return min(int(r.random() * n), n - 1)


def chroma_room(chroma: list[float], luma: float) -> float:
    """Largest step along a chroma direction from grey ``luma`` that keeps every channel in [0, 1] (inf: none)."""
    limit = math.inf
    for x in chroma:
        if x > 1e-9:
            limit = min(limit, (1.0 - luma) / x)
        elif x < -1e-9:
            limit = min(limit, luma / -x)
    return limit


def color_with_luma(r: random.Random, luma: float, saturation: float) -> tuple[float, float, float]:
    """A random RGB colour with exactly the given luminance and a random hue/chroma up to ``saturation``."""
    d = [r.random() - 0.5 for _ in range(3)]
    shift = sum(w * x for w, x in zip(_LUMA, d))
    d = [x - shift for x in d]  # chroma direction: adding it leaves the luminance unchanged
    limit = chroma_room(d, luma)
    step = 0.0 if limit == math.inf else limit * saturation * r.random()
    return tuple(min(max(luma + step * x, 0.0), 1.0) for x in d)  # type: ignore[return-value]


def with_luma(rgb: tuple[float, float, float], y: float) -> tuple[float, float, float]:
    """``rgb`` moved to luminance ``y``, keeping its hue (its chroma shrunk only as far as [0, 1] requires)."""
    y0 = luma(rgb)
    chroma = [c - y0 for c in rgb]
    scale = min(1.0, chroma_room(chroma, y))
    return tuple(min(max(y + scale * c, 0.0), 1.0) for c in chroma)  # type: ignore[return-value]


def luma(rgb: tuple[float, float, float]) -> float:
    return _LUMA[0] * rgb[0] + _LUMA[1] * rgb[1] + _LUMA[2] * rgb[2]
