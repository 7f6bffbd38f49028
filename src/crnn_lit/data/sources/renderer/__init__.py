"""Embedded synthetic word renderer: the default, download-free training data.

A ``WordRenderer`` turns ``(seed, index)`` into a word image and its label, deterministically and
without any shared state: the same pair gives the same pixels in any process, in any order. Everything
random about a sample (word, font, size, spacing, colours, geometry, effects) is decided by
``WordRenderer.plan``, which is cheap (no rasterising), so ``WordRenderer.width`` can report the
exact final width of any index for width-bucketed batching. ``WordRenderer.render`` then draws the
plan: cached glyph bitmaps are pasted onto a small canvas, one perspective warp maps that canvas straight
to the output size (height-normalised, with rotation/shear/perspective folded in), and the result is
composited over a background (flat, gradient, smooth noise or a photograph) and degraded (blur, low
resolution, noise, JPEG).

Contrast is guaranteed: the luminance of the text colour differs from every background pixel (before
noise) by at least ``min_contrast`` (0..1 scale), and borders/shadows always sit on the background's side.

Parts: ``fonts`` (faces, metrics, glyph bitmaps), ``style`` (the knobs, filled from ``conf/renderer``), ``plan``
(the plan of one sample), ``lines`` (the text of a line: ``content="lines"`` draws receipt and label lines instead
of words), ``planner`` (every random decision: what to draw), ``painter`` (the pixels: how to draw it),
``backgrounds`` (photos, gradients, noise, border steps), ``degrade`` (blur, low resolution, noise, JPEG) and
``core`` (the renderer, a planner and a painter, and its dataset).
"""

from crnn_lit.data.sources.renderer.backgrounds import load_textures
from crnn_lit.data.sources.renderer.core import SyntheticWords, WordRenderer
from crnn_lit.data.sources.renderer.fonts import (
           PRINTABLE_ASCII,
           discover_fonts,
           font_codepoints,
           missing_glyphs,
)
from crnn_lit.data.sources.renderer.plan import RenderPlan, luma
from crnn_lit.data.sources.renderer.style import RenderStyle

__all__ = ["PRINTABLE_ASCII", "RenderPlan", "RenderStyle", "SyntheticWords", "WordRenderer", "discover_fonts",
           "font_codepoints", "load_textures", "luma", "missing_glyphs"]
