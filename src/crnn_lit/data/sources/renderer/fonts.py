"""Font faces: discovery, glyph coverage, per-size metrics and glyph bitmaps (cached), pen positions."""

from __future__ import annotations

import fnmatch
import math
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PRINTABLE_ASCII = "".join(chr(c) for c in range(33, 127))  # the 94 printable, non-space ASCII characters
DIGITS = "0123456789"
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FONT_SUFFIXES = (".ttf", ".otf")


def discover_fonts(fonts_dir: str | Path) -> list[Path]:
    """All .ttf/.otf files under ``fonts_dir`` (recursive), in a stable (sorted) order."""
    root = Path(fonts_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"fonts_dir {str(root)!r} is not a directory")
    return sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FONT_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def font_codepoints(path: str | Path) -> set[int]:
    """Code points mapped to a real glyph by the font's Unicode ``cmap`` subtables (formats 4 and 12).

    A tiny sfnt reader, so that glyph coverage can be checked without extra dependencies.
    """
    data = Path(path).read_bytes()
    num_tables = struct.unpack_from(">H", data, 4)[0]
    cmap = None
    for i in range(num_tables):
        tag, _, off, _ = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if tag == b"cmap":
            cmap = off
    if cmap is None:
        raise ValueError(f"{path}: no cmap table")
    points: set[int] = set()
    n_sub = struct.unpack_from(">H", data, cmap + 2)[0]
    for i in range(n_sub):
        platform, encoding, sub_off = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        if not (platform == 0 or (platform == 3 and encoding in (1, 10))):
            continue
        sub = cmap + sub_off
        fmt = struct.unpack_from(">H", data, sub)[0]
        if fmt == 4:
            seg_count = struct.unpack_from(">H", data, sub + 6)[0] // 2
            ends = struct.unpack_from(f">{seg_count}H", data, sub + 14)
            starts_at = sub + 16 + 2 * seg_count
            starts = struct.unpack_from(f">{seg_count}H", data, starts_at)
            deltas = struct.unpack_from(f">{seg_count}h", data, starts_at + 2 * seg_count)
            ro_at = starts_at + 4 * seg_count
            range_offsets = struct.unpack_from(f">{seg_count}H", data, ro_at)
            for s in range(seg_count):
                start, end, delta, ro = starts[s], ends[s], deltas[s], range_offsets[s]
                if start == 0xFFFF:
                    continue
                for c in range(start, end + 1):
                    if ro == 0:
                        gid = (c + delta) & 0xFFFF
                    else:
                        gid = struct.unpack_from(">H", data, ro_at + 2 * s + ro + 2 * (c - start))[0]
                        gid = (gid + delta) & 0xFFFF if gid else 0
                    if gid:
                        points.add(c)
        elif fmt == 12:
            n_groups = struct.unpack_from(">I", data, sub + 12)[0]
            for g in range(n_groups):
                start, end, glyph = struct.unpack_from(">III", data, sub + 16 + 12 * g)
                for c in range(start, end + 1):
                    if glyph + (c - start):
                        points.add(c)
    return points


def missing_glyphs(path: str | Path, chars: str = PRINTABLE_ASCII) -> str:
    """The characters of ``chars`` that the font at ``path`` has no glyph for ("" when complete)."""
    points = font_codepoints(path)
    return "".join(ch for ch in chars if ord(ch) not in points)


class FontAtSize:
    """One face at one pixel size: glyph metrics always, glyph bitmaps on first use."""

    __slots__ = ("bitmaps", "bottom", "font", "metrics", "top")

    def __init__(self, path: Path, size: int):
        self.font = ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
        self.metrics: dict[str, tuple[float, int, int, int, int]] = {}
        self.bitmaps: dict[str, np.ndarray] = {}
        # Font-level vertical extent (relative to the baseline) so that all words of a face share one
        # scale: "ace" is not blown up to the height of "Hg". One call for the whole alphabet: the same
        # extent as its glyphs' own boxes (checked for every shipped face), at a third of the cost per new face.
        _, self.top, _, self.bottom = self.font.getbbox(LETTERS + DIGITS, anchor="ls")

    def metric(self, ch: str) -> tuple[float, int, int, int, int]:
        """(advance, left, top, right, bottom) of ``ch`` with the pen at the baseline origin."""
        m = self.metrics.get(ch)
        if m is None:
            left, top, right, bottom = self.font.getbbox(ch, anchor="ls")
            m = (self.font.getlength(ch), left, top, right, bottom)
            self.metrics[ch] = m
        return m

    def bitmap(self, ch: str) -> np.ndarray:
        """Anti-aliased coverage of ``ch``, exactly its bbox from ``metric`` (uint8)."""
        bmp = self.bitmaps.get(ch)
        if bmp is None:
            _, left, top, right, bottom = self.metric(ch)
            img = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
            ImageDraw.Draw(img).text((-left, -top), ch, font=self.font, fill=255, anchor="ls")
            bmp = np.asarray(img, dtype=np.uint8)
            self.bitmaps[ch] = bmp
        return bmp



class Faces:
    """``FontAtSize`` per (font index, size), made on first use; pickled empty (a loader worker refills it)."""

    def __init__(self, fonts: list[Path]):
        self.fonts = fonts
        self._cache: dict[tuple[int, int], FontAtSize] = {}

    def __call__(self, font: int, size: int) -> FontAtSize:
        key = (font, size)
        face = self._cache.get(key)
        if face is None:
            face = self._cache[key] = FontAtSize(self.fonts[font], size)
        return face

    def __len__(self) -> int:
        return len(self._cache)

    def __getstate__(self) -> dict:
        return {"fonts": self.fonts, "_cache": {}}


def pen_positions(face: FontAtSize, text: str, spacing: float, word_space: float = 1.0
                  ) -> tuple[list[int], tuple[int, int, int, int]]:
    """Pen x of each character and the ink box (x0, top, x1, bottom) relative to the pen origin/baseline.

    ``spacing``: extra advance after every character (px); ``word_space``: a space advances this many times the
    face's own space advance (a space has no ink: the box spans the visible glyphs only)."""
    pen, xs = 0.0, []
    x0, x1, top, bottom = math.inf, -math.inf, math.inf, -math.inf
    for ch in text:
        adv, left, t, right, b = face.metric(ch)
        x = round(pen)
        xs.append(x)
        if ch == " ":
            adv *= word_space
        else:
            x0, x1 = min(x0, x + left), max(x1, x + right)
            top, bottom = min(top, t), max(bottom, b)
        pen += adv + spacing
    return xs, (x0, top, x1, bottom)


def arc_offsets(face: FontAtSize, text: str, xs: list[int], bend: float) -> list[int]:
    """Baseline offsets (px, down) putting the glyphs' centres on a parabola: 0 mid-word, ``bend`` at its ends."""
    centres = [x + (m[1] + m[3]) / 2.0 for x, m in zip(xs, map(face.metric, text))]
    mid, half = (centres[0] + centres[-1]) / 2.0, max((centres[-1] - centres[0]) / 2.0, 1.0)
    return [round(bend * ((c - mid) / half) ** 2) for c in centres]


def font_cdf(fonts: list[Path], root: Path, weights: Mapping[str, float]) -> list[float] | None:
    """Cumulative sampling probabilities of ``fonts`` under ``weights`` ({glob on the path below ``root``: weight},
    first match wins, unmatched faces weigh 1); None when every face weighs the same (uniform draw)."""
    if not weights:
        return None
    w = []
    for path in fonts:
        rel = path.relative_to(root).as_posix()
        w.append(next((float(v) for pattern, v in weights.items() if fnmatch.fnmatchcase(rel, pattern)), 1.0))
    total = sum(w)
    if total <= 0:
        raise ValueError("font_weights leave no face with a positive weight")
    cdf, acc = [], 0.0
    for v in w:
        acc += v / total
        cdf.append(acc)
    cdf[-1] = 1.0 + 1e-12  # bisect never runs past the last face
    return cdf
