"""Decoding image bytes and files into uint8 arrays, with every failure mapped to a ``BadSample``.

Every image is read upright: an EXIF orientation (a phone's JPEG stored sideways with Orientation=6) is applied
when it is decoded, and its sizes are the upright ones. This module is where every file, LMDB record and in-memory
PIL image becomes pixels (training, evaluate, predict, inspect and the converter's check), so all of them agree.

Also reads image sizes from headers without decoding pixels (the width-bucketing batch sampler needs the width
of every sample of an epoch): PNG and JPEG headers are parsed directly (a few microseconds), anything else goes
through PIL's lazy open.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crnn_lit.data.sample import BadSample

# decoding a crafted 1-pixel-high, million-pixel-wide "word" is a denial of service, not a sample
MAX_PIXELS = 4096 * 4096
# what PIL may raise on broken or hostile input (DecompressionBombError is not an OSError)
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error,
                  Image.DecompressionBombError, MemoryError)
# what counts as an image file in a folder (predict's inputs, a folder dataset's unlabelled files)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
ORIENTATION = 0x0112  # the EXIF tag; values 5-8 turn the image a quarter (its width and height swap)


def upright(img: Image.Image) -> Image.Image:
    """``img`` turned and mirrored as its EXIF orientation says (itself when it has none)."""
    return ImageOps.exif_transpose(img) if img.getexif().get(ORIENTATION, 1) != 1 else img


def _to_uint8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit grayscale: rescale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 255 and img.mode != "F":  # already 8-bit values in a wide container
            return arr.astype(np.uint8)
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return ((arr - lo) * scale).astype(np.uint8)
    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (np.asarray of a PIL image is read-only)


def decode_image(data: bytes | memoryview | Path, key: str) -> np.ndarray:
    """uint8 H×W / H×W×3 / H×W×4 array, or ``BadSample`` with reason ``unreadable`` / ``empty_file`` / ``bad_image``.

    16-bit images are rescaled to 8 bits, palette and CMYK images converted to RGB(A); images smaller than 2 px on
    a side or larger than ``MAX_PIXELS`` are ``bad_image`` (checked from the header, before decoding).
    """
    try:
        if isinstance(data, Path) and data.stat().st_size == 0 or not isinstance(data, Path) and not len(data):
            raise BadSample("empty_file", key)
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise BadSample("bad_image", key, f"{img.width}×{img.height} is too large")
            img.load()
            arr = _to_uint8(upright(img))
    except BadSample:
        raise
    except FileNotFoundError:
        raise BadSample("missing_file", key) from None
    except _DECODE_ERRORS as err:
        raise BadSample("unreadable", key, f"{type(err).__name__}: {err}") from None
    return _checked(arr, key)


def image_array(image: Image.Image | np.ndarray, key: str) -> np.ndarray:
    """An in-memory image (PIL, or a uint8 H×W / H×W×{1,3,4} RGB(A) array) as ``decode_image`` returns files,
    or ``BadSample`` ``bad_image`` saying what is wrong with it."""
    if isinstance(image, Image.Image):
        if image.width * image.height > MAX_PIXELS:
            raise BadSample("bad_image", key, f"{image.width}×{image.height} is too large")
        return _checked(_to_uint8(upright(image)), key)
    if not isinstance(image, np.ndarray):
        raise BadSample("bad_image", key, f"{type(image).__name__} is not an image (a path, PIL image or array)")
    if image.dtype != np.uint8:
        raise BadSample("bad_image", key, f"array dtype {image.dtype}; expected uint8 (0-255)")
    if image.ndim not in (2, 3) or image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise BadSample("bad_image", key, f"array shape {image.shape}; expected H×W or H×W×{{1,3,4}}")
    if image.size > MAX_PIXELS * (image.shape[2] if image.ndim == 3 else 1):
        raise BadSample("bad_image", key, f"{image.shape[1]}×{image.shape[0]} is too large")
    return _checked(image, key)


def _checked(arr: np.ndarray, key: str) -> np.ndarray:
    if arr.ndim < 2 or min(arr.shape[:2]) < 2:
        raise BadSample("bad_image", key, f"size {arr.shape[1::-1] if arr.ndim >= 2 else arr.shape}")
    return arr


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they carry the size); C4 (DHT), C8 (JPG) and CC (DAC) are not frames
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _exif_orientation(tiff: bytes) -> int:
    """The orientation in an EXIF block (the TIFF structure after ``Exif\\0\\0``), 1 when absent or broken."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return 1
    for i in range(struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            break
        if struct.unpack(order + "H", tiff[entry:entry + 2])[0] == ORIENTATION:
            return struct.unpack(order + "H", tiff[entry + 8:entry + 10])[0]
    return 1


def _jpeg_size(buf: bytes) -> tuple[int, int] | None:
    """(width, height) upright: from the frame header, swapped when the EXIF orientation turns it a quarter."""
    pos, n, orientation = 2, len(buf), 1
    while pos + 9 <= n:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", buf[pos + 5:pos + 9])
            return (height, width) if orientation >= 5 else (width, height)
        if marker == 0xE1 and buf[pos + 4:pos + 10] == b"Exif\0\0":  # APP1: EXIF, before the frame
            length = struct.unpack(">H", buf[pos + 2:pos + 4])[0]
            orientation = _exif_orientation(buf[pos + 10:pos + 2 + length])
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        pos += 2 + struct.unpack(">H", buf[pos + 2:pos + 4])[0]
    return None


def size_from_bytes(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from an encoded image's header, or None if it cannot be read (the sample will then be
    rejected when it is decoded)."""
    head = bytes(data[:65536])
    try:
        if head.startswith(_PNG_MAGIC) and head[12:16] == b"IHDR" and b"eXIf" not in head:
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"\xff\xd8"):
            size = _jpeg_size(head)
            if size is not None:
                return size
        with Image.open(io.BytesIO(bytes(data))) as img:
            return _upright_size(img)
    except _DECODE_ERRORS:
        return None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding pixels; None if missing or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
        if head.startswith((_PNG_MAGIC, b"\xff\xd8")):
            size = size_from_bytes(head)
            if size is not None:
                return size
        with Image.open(path) as img:
            return _upright_size(img)
    except _DECODE_ERRORS:
        return None


def _upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of a lazily opened image once its EXIF orientation is applied."""
    return img.size[::-1] if img.getexif().get(ORIENTATION, 1) >= 5 else img.size
