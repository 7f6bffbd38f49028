"""Image degradation after composing: blur, low resolution, sensor noise, JPEG."""

from __future__ import annotations

import cv2
import numpy as np

from crnn_lit.data.sources.renderer.plan import RenderPlan


def degrade(out: np.ndarray, p: RenderPlan, rng_for) -> np.ndarray:
    """Blur, low resolution, noise and JPEG on the composed float image; returns uint8."""
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
