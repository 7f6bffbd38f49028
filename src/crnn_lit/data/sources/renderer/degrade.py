"""Image degradation after composing: uneven light, motion and defocus blur, low resolution, noise, JPEG."""

from __future__ import annotations

import math

import cv2
import numpy as np

from crnn_lit.data.sources.renderer.backgrounds import ramp
from crnn_lit.data.sources.renderer.plan import RenderPlan


def shade_gain(shade: tuple[float, float, float, float], H: int, W: int) -> np.ndarray:
    """Gain in [1 - depth, 1]: the image darkened beyond a line across it, the edge as soft as asked."""
    depth, angle, edge, softness = shade
    t, half = ramp(H, W, angle)
    t *= np.float32(1.0 / half)  # -1..1 along the direction
    side = np.tanh((t - np.float32(2.0 * edge - 1.0)) * np.float32(0.5 / softness))  # softness: of the extent 2
    return np.float32(1.0 - 0.5 * depth) - np.float32(0.5 * depth) * side


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised kernel of a line ``length`` px long through its centre (camera shake), sampled every 1/8 px
    and spread bilinearly, so that a horizontal or vertical line stays one pixel wide."""
    k = 2 * math.ceil(length / 2.0) + 1
    t = np.linspace(-0.5 * length, 0.5 * length, max(2, math.ceil(8 * length)))
    x, y = (k - 1) / 2.0 + t * math.cos(angle), (k - 1) / 2.0 + t * math.sin(angle)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    kernel = np.zeros((k + 1, k + 1))  # one spare row/column for the zero-weight neighbours of the last sample
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    kernel = kernel[:k, :k].astype(np.float32)
    return kernel / kernel.sum()


def degrade(out: np.ndarray, p: RenderPlan, rng_for) -> np.ndarray:
    """Uneven light, blur, low resolution, noise and JPEG on the composed float image; returns uint8."""
    if p.shade[0] > 0.0:
        gain = shade_gain(p.shade, *out.shape[:2])
        out *= gain if out.ndim == 2 else gain[:, :, None]
    if p.motion[0] > 0.0:
        out = cv2.filter2D(out, -1, motion_kernel(*p.motion), borderType=cv2.BORDER_REFLECT)
    if p.blur > 0.0:
        out = cv2.GaussianBlur(out, (0, 0), p.blur)
    if p.lowres < 1.0:
        H, W = out.shape[:2]
        small = cv2.resize(out, (max(2, round(W * p.lowres)), max(2, round(H * p.lowres))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    if p.noise > 0.0:
        noise = rng_for().standard_normal(out.shape[:2], dtype=np.float32)
        noise *= np.float32(p.noise)
        out += noise if out.ndim == 2 else noise[:, :, None]
    out += np.float32(0.5)
    np.clip(out, 0.0, 255.0, out=out)
    img = out.astype(np.uint8)
    if p.jpeg:
        ok, buf = cv2.imencode(".jpg", img, (cv2.IMWRITE_JPEG_QUALITY, p.jpeg))
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(img.shape)
    return img
