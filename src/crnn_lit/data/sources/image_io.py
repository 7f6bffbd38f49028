"""Decoding image bytes and files into uint8 arrays, with every failure mapped to a ``BadSample``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from crnn_lit.data.sample import BadSample

# decoding a crafted 1-pixel-high, million-pixel-wide "word" is a denial of service, not a sample
MAX_PIXELS = 4096 * 4096


def _to_uint8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grayscale: rescale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        return (arr * (255.0 / hi)).astype(np.uint8)
    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    return np.asarray(img, dtype=np.uint8)


def decode_image(data: bytes | Path, key: str) -> np.ndarray:
    """uint8 H×W / H×W×3 / H×W×4 array, or ``BadSample`` with reason ``unreadable`` / ``empty_file`` / ``bad_image``."""
    try:
        if isinstance(data, Path) and data.stat().st_size == 0 or isinstance(data, bytes) and not data:
            raise BadSample("empty_file", key)
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise BadSample("bad_image", key, f"{img.width}×{img.height} is too large")
            img.load()
            arr = _to_uint8(img)
    except BadSample:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise BadSample("unreadable", key, f"{type(err).__name__}: {err}") from None
    if arr.ndim < 2 or min(arr.shape[:2]) < 2:
        raise BadSample("bad_image", key, f"size {arr.shape[1::-1] if arr.ndim >= 2 else arr.shape}")
    return arr


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding pixels; None if unreadable."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
