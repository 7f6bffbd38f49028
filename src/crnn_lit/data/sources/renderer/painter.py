"""WordPainter: RenderPlan -> pixels (glyphs pasted, one warp, background, composite, degradation)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from crnn_lit.data.sources.renderer.backgrounds import background_field
from crnn_lit.data.sources.renderer.degrade import degrade
from crnn_lit.data.sources.renderer.fonts import Faces, pen_positions
from crnn_lit.data.sources.renderer.plan import MASK64, PAD, Layout, RenderPlan, luma
from crnn_lit.preprocess import Preprocess

_BOLD_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
# OpenCV samples at pixel centres, plans use edge coordinates
_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_HALF_INV = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])


class WordPainter:
    """How to draw: rasterises a ``RenderPlan``, taking no decision of its own beyond pixel noise.

    Args:
        faces: the glyph cache (shared with the planner, whose metrics placed the glyphs).
        textures: the background photographs a plan's ``photo`` indexes.
        preprocess: output height and channels.
        seed: with the index, seeds the pixel-level randomness (noise, texture).
    """

    def __init__(self, faces: Faces, textures: list[np.ndarray], preprocess: Preprocess, seed: int):
        self.faces = faces
        self.textures = textures
        self.preprocess = preprocess
        self.seed = int(seed)

    def text_layer(self, lay: Layout) -> tuple[np.ndarray, float, float]:
        """Coverage of the word (and its neighbours) and the canvas origin's offset from the word canvas's."""
        face = self.faces(lay.font, lay.size)
        x0, top, x1, bottom = lay.ink
        runs = [(lay.text, 0, 0, lay.xs, lay.ys)]
        ex0, ey0, ex1, ey1 = x0, top, x1, bottom  # canvas extent in pen coordinates, grown for the neighbours
        for word, ox, oy in lay.neighbours:
            xs, (nx0, ntop, nx1, nbottom) = pen_positions(face, word, 0.0)
            runs.append((word, ox, oy, xs, [0] * len(word)))
            ex0, ex1 = min(ex0, ox + nx0), max(ex1, ox + nx1)
            ey0, ey1 = min(ey0, oy + ntop), max(ey1, oy + nbottom)
        ex0, ey0, ex1, ey1 = math.floor(ex0), math.floor(ey0), math.ceil(ex1), math.ceil(ey1)
        text = np.zeros((ey1 - ey0 + 2 * PAD, ex1 - ex0 + 2 * PAD), np.uint8)
        for word, ox, oy, xs, ys in runs:
            for ch, x, y in zip(word, xs, ys):
                if ch == " ":  # no ink
                    continue
                _, left, t, _, _ = face.metric(ch)
                bmp = face.bitmap(ch)
                gx, gy = PAD + ox + x + left - ex0, PAD + oy + y + t - ey0
                h, w = bmp.shape
                region = text[gy : gy + h, gx : gx + w]
                np.maximum(region, bmp, out=region)
        if lay.bold:
            text = cv2.dilate(text, _BOLD_KERNEL)
        return text, ex0 - x0, ey0 - top

    def draw(self, p: RenderPlan, index: int) -> np.ndarray:
        """Rasterise a plan; ``index`` seeds the pixel-level randomness (noise, texture)."""
        lay = p.layout
        text, dx, dy = self.text_layer(lay)
        chh, cw = text.shape
        layers = [text]
        if lay.border:
            k = 2 * lay.border + 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
            layers.append(cv2.dilate(text, kernel))
        if lay.shadow != (0, 0):
            sx, sy = lay.shadow
            sh = np.zeros_like(text)
            sh[sy:, sx:] = text[: chh - sy, : cw - sx]
            layers.append(sh)
        src = layers[0] if len(layers) == 1 else np.dstack(layers)

        # OpenCV samples at pixel centres: convert the edge-coordinate matrix accordingly; the text canvas may
        # start (dx, dy) away from the word canvas the plan's matrix is written for.
        m = np.array(lay.matrix, dtype=np.float64).reshape(3, 3)
        shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
        m = _HALF_INV @ m @ shift @ _HALF
        H, W = self.preprocess.height, lay.width
        warped = cv2.warpPerspective(src, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if warped.ndim == 2:
            warped = warped[:, :, None]
        alphas = warped.astype(np.float32) * np.float32(1.0 / 255.0)

        rngs: list[np.random.Generator] = []

        def rng_for() -> np.random.Generator:  # one pixel-level stream per image, made on first use
            if not rngs:
                rngs.append(np.random.default_rng([self.seed & MASK64, index & MASK64]))
            return rngs[0]

        field = background_field(p, H, W, self.textures, rng_for)

        if self.preprocess.channels == 1:
            out = np.full((H, W), luma(p.bg) * 255.0, np.float32)
            if field is not None:
                out += field
            order = []
            if lay.shadow != (0, 0):
                order.append((alphas[:, :, -1], luma(p.shadow_color)))
            if lay.border:
                order.append((alphas[:, :, 1], luma(p.border_color)))
            order.append((alphas[:, :, 0], luma(p.fg)))
            for a, y in order:
                out += a * (np.float32(y * 255.0) - out)
        else:
            out = np.empty((H, W, 3), np.float32)
            out[:] = np.array(p.bg, np.float32) * np.float32(255.0)
            if field is not None:
                out += field[:, :, None]
            order = []
            if lay.shadow != (0, 0):
                order.append((alphas[:, :, -1:], p.shadow_color))
            if lay.border:
                order.append((alphas[:, :, 1:2], p.border_color))
            order.append((alphas[:, :, 0:1], p.fg))
            for a, col in order:
                out += a * (np.array(col, np.float32) * np.float32(255.0) - out)
        return degrade(out, p, rng_for)
