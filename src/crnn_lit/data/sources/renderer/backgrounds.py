"""Backgrounds: photographs (data/textures), gradients, smooth noise and border steps, as luminance fields."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from crnn_lit.data.sources.renderer.plan import RenderPlan


def load_textures(textures_dir: str | Path) -> list[np.ndarray]:
    """Grayscale photographs (.jpg/.png) under ``textures_dir``, sorted by path."""
    root = Path(textures_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"textures_dir {str(root)!r} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [np.asarray(Image.open(f).convert("L"), dtype=np.uint8) for f in files]


def photo_field(tex: np.ndarray, photo: tuple[int, float, float, float, bool], H: int, W: int) -> np.ndarray:
    """A crop of a texture at ``scale`` texture px per output px, mirrored or not, as a field in [-1, 1]."""
    _, fx, fy, scale, mirror = photo
    th, tw = tex.shape
    ch = min(th, max(4, round(H * scale)))
    cw = min(tw, max(4, round(W * scale)))
    y, x = int(fy * (th - ch)), int(fx * (tw - cw))
    crop = tex[y : y + ch, x : x + cw]
    if mirror:
        crop = crop[:, ::-1]
    field = cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)
    field = field.astype(np.float32)
    field -= np.float32(field.mean())
    peak = float(np.abs(field).max())
    return field * np.float32(1.0 / peak) if peak > 0 else field


def ramp(H: int, W: int, angle: float) -> tuple[np.ndarray, float]:
    """Signed distance of each pixel from the image centre along ``angle`` (px), and its largest value."""
    u = np.arange(W, dtype=np.float32) - (W - 1) / 2.0
    v = np.arange(H, dtype=np.float32) - (H - 1) / 2.0
    c, s = math.cos(angle), math.sin(angle)
    half = abs(c) * (W - 1) / 2.0 + abs(s) * (H - 1) / 2.0
    return np.add.outer(v * np.float32(s), u * np.float32(c)), max(half, 1e-6)


def background_field(p: RenderPlan, H: int, W: int, textures: list[np.ndarray], rng_for) -> np.ndarray | None:
    """Luminance deviation field (0..255 units, within ±bg_amp) around the base colour, or None."""
    field = None
    if p.bg_kind == "gradient":
        field, half = ramp(H, W, p.bg_angle)
        field *= np.float32(p.bg_amp * 255.0 / half)
    elif p.bg_kind == "texture":
        rng = rng_for()
        gh = 2 + int(rng.integers(0, 4))
        gw = max(2, W // int(rng.integers(4, 17)))
        grid = rng.random((gh, gw), dtype=np.float32)
        field = cv2.resize(grid, (W, H), interpolation=cv2.INTER_LINEAR)
        field = (field * np.float32(2.0) - np.float32(1.0)) * np.float32(p.bg_amp * 255.0)
    elif p.bg_kind == "photo":
        field = photo_field(textures[p.photo[0]], p.photo, H, W) * np.float32(p.bg_amp * 255.0)
    if p.edge >= 0.0:  # a sign's border: the far side of a horizontal line shifts by the amplitude
        step = np.zeros((H, 1), np.float32)
        row = int(p.edge * H)
        sign = 1.0 if p.bg_angle < math.pi else -1.0
        if p.edge < 0.5:
            step[:row] = sign * p.bg_amp * 255.0
        else:
            step[row:] = sign * p.bg_amp * 255.0
        if field is None:
            field = np.repeat(step, W, axis=1)
        else:  # keep the sum within ±amp: halve both
            field = np.float32(0.5) * (field + step)
    return field
