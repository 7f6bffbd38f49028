"""WordPlanner: (seed, index) -> RenderPlan, every random decision of one sample, without drawing a pixel."""

from __future__ import annotations

import bisect
import math
import random
from pathlib import Path

from crnn_lit.data.sources.renderer.fonts import (
    DIGITS,
    LETTERS,
    PRINTABLE_ASCII,
    Faces,
    FontAtSize,
    arc_offsets,
    discover_fonts,
    font_cdf,
    pen_positions,
)
from crnn_lit.data.sources.renderer.lines import LineComposer
from crnn_lit.data.sources.renderer.palette import draw_pair, load_palette
from crnn_lit.data.sources.renderer.plan import (
    MASK64,
    PAD,
    Layout,
    RenderPlan,
    below,
    color_with_luma,
    luma,
    uniform,
)
from crnn_lit.data.sources.renderer.style import RenderStyle
from crnn_lit.data.sources.renderer.words import load_frequencies, load_words, symbolic_text
from crnn_lit.preprocess import Preprocess


class WordPlanner:
    """What to draw: label, face, layout, neighbours, colours and effects of ``(seed, index)``, glyph metrics only.

    Knows each image's exact width without rasterising it, which is what width-bucketed batching asks of every
    index. Arguments as ``WordRenderer``'s, which owns their defaults;
    ``n_textures``: how many background photographs a plan may pick from. ``content="lines"``: a
    ``LineComposer`` writes the text (words keep their stream as it was).
    """

    def __init__(
        self,
        words_file: str,
        fonts_dir: str,
        preprocess: Preprocess,
        seed: int,
        max_word_len: int,
        charset_chars: str | None,
        extra_words_files: tuple[str, ...],
        frequency_file: str | None,
        style: RenderStyle,
        palette_file: str | None,
        n_textures: int,
        content: str = "words",
        line_words_file: str | None = None,
    ):
        self.style = style
        self.words_file = str(words_file)
        self.fonts_dir = str(fonts_dir)
        self.preprocess = preprocess
        self.seed = int(seed)
        self.max_word_len = int(max_word_len)
        self.charset_chars = charset_chars
        hi = max(1, min(int(self.style.random_len[1]), self.max_word_len))
        self._random_len = (min(max(1, int(self.style.random_len[0])), hi), hi)  # never beyond max_word_len
        self.n_textures = int(n_textures)

        self.palette_file = None if palette_file is None else str(palette_file)
        self._palette, self._palette_cdf = load_palette(palette_file) if palette_file is not None else ([], [])
        if self.style.p_real_colors > 0 and not self._palette:
            raise ValueError("p_real_colors > 0 needs a palette_file")

        self.fonts = discover_fonts(fonts_dir)
        if not self.fonts:
            raise FileNotFoundError(f"no .ttf/.otf fonts under {fonts_dir!r}")
        self.faces = Faces(self.fonts)  # the painter draws from the same cache
        self._font_cdf = font_cdf(self.fonts, Path(fonts_dir), self.style.font_weights)

        allowed = set(charset_chars) if charset_chars is not None else None
        self._allowed = allowed
        self.extra_words_files = tuple(str(f) for f in extra_words_files)
        self.words = load_words(words_file, self.extra_words_files, self.max_word_len, allowed)
        if content not in ("words", "lines"):
            raise ValueError(f"renderer content must be 'words' or 'lines', got {content!r}")
        self.content = content
        self.line_words_file = None if line_words_file is None else str(line_words_file)
        self.lines = None
        if content == "lines":  # case is the line's to decide: the charset's own fold settles the label's later
            shop = load_words(line_words_file, (), self.max_word_len, None) if line_words_file else []
            self.lines = LineComposer(self.words, shop, self.max_word_len, self.style.p_line_upper,
                                      self.style.p_double_space, self.style.p_tight_punct)
        self.frequency_file = None if frequency_file is None else str(frequency_file)
        self._frequent, self._frequent_cdf = ([], None) if frequency_file is None else load_frequencies(
            frequency_file, self.style.frequency_power, self.max_word_len, allowed)

        if allowed is None:
            self._random_digits, self._random_mixed = DIGITS, DIGITS + LETTERS
        else:
            usable = "".join(sorted(c for c in allowed if c in PRINTABLE_ASCII))
            if not usable:
                raise ValueError("charset_chars has no printable ASCII character")
            digits = "".join(c for c in DIGITS if c in allowed)
            self._random_digits, self._random_mixed = digits or usable, usable

    def _rng(self, index: int) -> random.Random:
        # An int seed is hashed the same way by every Python process and version (no PYTHONHASHSEED).
        return random.Random(((self.seed & MASK64) << 64) | (index & MASK64))

    # ---- label ----
    def _label(self, r: random.Random) -> str:
        if r.random() < self.style.p_digits:
            lo, hi = self._random_len
            n = lo + below(r, hi - lo + 1)
            pool = self._random_digits if r.random() < 0.5 else self._random_mixed
            return "".join(pool[below(r, len(pool))] for _ in range(n))
        # (no draw at all when p_frequent is 0: the stream of every other decision stays as it was)
        if self._frequent_cdf is not None and self.style.p_frequent > 0 and r.random() < self.style.p_frequent:
            w = self._frequent[bisect.bisect_right(self._frequent_cdf, r.random())]
        else:
            w = self.words[below(r, len(self.words))]
        u = r.random()
        if u < self.style.p_upper:
            cand = w.upper()
        elif u < self.style.p_upper + self.style.p_capitalized and w.islower():
            cand = w[0].upper() + w[1:]
        else:
            cand = w
        if self._allowed is not None and not set(cand) <= self._allowed:
            cand = w
        # (as p_frequent: no draw when p_symbols is 0)
        if self.style.p_symbols > 0 and r.random() < self.style.p_symbols:
            text = symbolic_text(r, cand, self.max_word_len)
            cand = text if self._allowed is None or set(text) <= self._allowed else cand
        return cand

    def _line(self, r: random.Random) -> tuple[str, str, float]:
        """A line: (text as drawn, label, space width as a multiple of the face's space advance)."""
        text = self.lines.compose(r)
        if self._allowed is not None:  # characters no case of which the charset holds are not drawn
            ok = self._allowed
            text = "".join(c for c in text if c == " " or c in ok or c.upper() in ok or c.lower() in ok).strip()
            text = text or self._random_digits[0]
        return text, " ".join(text.split()), uniform(r, self.style.word_space)

    def _text(self, r: random.Random) -> tuple[str, str, float]:
        """(text as drawn, label, space width): a word is its own label."""
        if self.lines is not None:
            return self._line(r)
        label = self._label(r)
        return label, label, 1.0

    # ---- plan ----
    def _layout(self, r: random.Random) -> Layout:
        """First part of a plan: text, font and geometry (everything the width depends on)."""
        rand = r.random
        text, label, word_space = self._text(r)
        font = below(r, len(self.fonts)) if self._font_cdf is None else bisect.bisect_right(self._font_cdf, r.random())
        size = self.style.font_size[0] + below(r, self.style.font_size[1] - self.style.font_size[0] + 1)
        face = self.faces(font, size)

        spacing = size * uniform(r, self.style.char_spacing) if rand() < self.style.p_spacing else 0.0
        xs, (x0, top, x1, bottom) = pen_positions(face, text, spacing, word_space)
        ys = [0] * len(text)
        if self.style.p_curve > 0 and rand() < self.style.p_curve:  # (no draw at 0, as p_frequent)
            ys = arc_offsets(face, text, xs, size * self.style.max_curve * (2.0 * rand() - 1.0))
            top = min(face.metric(ch)[2] + y for ch, y in zip(text, ys))
            bottom = max(face.metric(ch)[4] + y for ch, y in zip(text, ys))
        if rand() >= self.style.p_tight_y:  # the face's full extent: all words of a face share one scale
            top, bottom = min(top, face.top + min(ys, default=0)), max(bottom, face.bottom + max(ys, default=0))

        border = (1 + below(r, 2)) if rand() < self.style.p_border else 0
        shadow = (1 + below(r, 3), 1 + below(r, 3)) if rand() < self.style.p_shadow else (0, 0)
        bold = 1 if rand() < self.style.p_bold else 0

        # geometry: text box centred at the origin -> shear, rotation, perspective (A = P @ R @ Sh)
        ext = max(border, shadow[0], shadow[1]) + bold
        hw, hh = (x1 - x0) / 2.0 + ext, (bottom - top) / 2.0 + ext
        shear = self.style.max_shear * (2.0 * rand() - 1.0)
        angle = math.radians(self.style.max_rotation * (2.0 * rand() - 1.0))
        px = py = 0.0
        if rand() < self.style.p_perspective:
            k = self.style.max_perspective * (2.0 * rand() - 1.0)  # relative size change from one end to the other
            if rand() < 0.75:
                px = k / (2.0 * hw)  # left/right ends of different height (seen from the side)
            else:
                py = 0.5 * k / (2.0 * hh)  # top/bottom of different width (seen from below/above)
        ca, sa = math.cos(angle), math.sin(angle)
        a00, a01 = ca, -ca * shear - sa
        a10, a11 = sa, -sa * shear + ca
        qx0 = qy0 = math.inf
        qx1 = qy1 = -math.inf
        for cx, cy in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)):
            X, Y = a00 * cx + a01 * cy, a10 * cx + a11 * cy
            w = 1.0 + px * X + py * Y
            X, Y = X / w, Y / w
            qx0, qx1, qy0, qy1 = min(qx0, X), max(qx1, X), min(qy0, Y), max(qy1, Y)

        # crop with random margins, then normalise the height
        ml, mr = size * uniform(r, self.style.margin_x), size * uniform(r, self.style.margin_x)
        mt, mb = size * uniform(r, self.style.margin_y), size * uniform(r, self.style.margin_y)
        neighbours = self._neighbours(r, face, text, xs, (x0 - ext, top - ext, x1 + ext, bottom + ext),
                                      (ml, mt, mr, mb))
        cx0, cy0 = qx0 - ml, qy0 - mt
        crop_w, crop_h = qx1 + mr - cx0, qy1 + mb - cy0
        sy = self.preprocess.height / crop_h
        natural = crop_w * sy
        width = max(round(natural), self.preprocess.min_width)
        width = width if self.preprocess.max_width is None else min(width, self.preprocess.max_width)
        if natural < width:  # pad with background (centred) rather than stretch
            extra = width / sy - crop_w
            cx0 -= extra / 2.0
            crop_w += extra
        sx = width / crop_w  # == sy up to rounding, smaller when squeezed to max_width

        # full map (edge coordinates): glyph canvas -> centred -> A -> crop -> scale
        ccx, ccy = PAD + (x1 - x0) / 2.0, PAD + (bottom - top) / 2.0
        p0, p1 = px * a00 + py * a10, px * a01 + py * a11
        rows = (
            (sx * a00 - sx * cx0 * p0, sx * a01 - sx * cx0 * p1, -sx * cx0),
            (sy * a10 - sy * cy0 * p0, sy * a11 - sy * cy0 * p1, -sy * cy0),
            (p0, p1, 1.0),
        )
        matrix = tuple(v for r0, r1, r2 in rows for v in (r0, r1, r2 - r0 * ccx - r1 * ccy))
        return Layout(text, label, font, size, xs, ys, (x0, top, x1, bottom), matrix, width, border, shadow, bold,
                      neighbours)

    def _neighbours(self, r: random.Random, face: FontAtSize, label: str, xs: list[int],
                    box: tuple[float, float, float, float], margins: tuple[float, float, float, float]
                    ) -> list[tuple[str, int, int]]:
        """Other text just outside the crop (pen positions relative to the word's pen origin).

        Only what the margins let through is visible: a sliver of a line above/below no taller than that
        margin, and at most half of one glyph of a word left/right, never closer than a word space.
        """
        if self.style.p_neighbours <= 0.0:
            return []
        rand = r.random
        x0, top, x1, bottom = box
        ml, mt, mr, mb = margins
        size = face.font.size
        out = []
        for side in ("above", "below", "left", "right"):
            if rand() >= self.style.p_neighbours:
                continue
            text = self.words[below(r, len(self.words))]
            text = text.upper() if rand() < 0.5 else text
            if side in ("above", "below"):
                gap = mt * rand() if side == "above" else mb * rand()
                y = top - gap - face.bottom if side == "above" else bottom + gap - face.top
                x = x0 + (x1 - x0) * (1.2 * rand() - 0.6)
                out.append((text, round(x), round(y)))
                continue
            if side == "right":
                _, left, _, right, _ = face.metric(text[0])
                seen = (right - left) * 0.5 * rand()  # visible part of the neighbour's first glyph
                if mr - seen < 0.25 * size:
                    continue
                out.append((text, round(x1 + mr - seen - left), 0))
            else:
                _, left, _, right, _ = face.metric(text[-1])
                seen = (right - left) * 0.5 * rand()
                if ml - seen < 0.25 * size:
                    continue
                pen, _ = pen_positions(face, text, 0.0)
                out.append((text, round(x0 - ml + seen - pen[-1] - right), 0))
        return out

    def plan(self, index: int) -> RenderPlan:
        """All random decisions for ``index`` (cheap: glyph metrics only, no rasterising)."""
        r = self._rng(index)
        lay = self._layout(r)
        rand = r.random

        # colours and background: the text luminance is >= min_contrast away from every background pixel
        u = rand()
        photo = (0, 0.0, 0.0, 1.0, False)
        if u < self.style.p_photo:
            bg_kind = "photo"
            photo = (below(r, self.n_textures), rand(), rand(), 1.0 + 5.0 * rand() ** 2, rand() < 0.5)
            bg_amp = self.style.photo_amplitude * (0.3 + 0.7 * rand())
        else:
            u = (u - self.style.p_photo) / max(1.0 - self.style.p_photo, 1e-9)
            bg_kind = "gradient" if u < self.style.p_gradient else "texture" if u < self.style.p_gradient + self.style.p_texture else "flat"
            bg_amp = 0.0 if bg_kind == "flat" else self.style.bg_amplitude * (0.3 + 0.7 * rand())
        bg_angle = 2.0 * math.pi * rand()
        edge = -1.0
        if rand() < self.style.p_edge:  # a border line in the top or bottom fifth of the image
            edge = 0.2 * rand() if rand() < 0.5 else 1.0 - 0.2 * rand()
            bg_amp = max(bg_amp, self.style.bg_amplitude * (0.5 + 0.5 * rand()))
        gap = self.style.min_contrast + bg_amp
        dark = rand() < self.style.p_dark_text
        y_text = (1.0 - gap) * rand() ** 1.5  # distance from the extreme: mostly near black/white
        y_bg = y_text + gap + (1.0 - gap - y_text) * rand() ** 0.7
        if not dark:
            y_text, y_bg = 1.0 - y_text, 1.0 - y_bg
        fg = color_with_luma(r, y_text, self.style.saturation * rand())
        bg = color_with_luma(r, y_bg, self.style.saturation * rand())
        if self.style.p_real_colors > 0 and rand() < self.style.p_real_colors:  # (as p_frequent: no draw at 0)
            fg, bg = draw_pair(r, self._palette, self._palette_cdf, gap)
            y_text, y_bg = luma(fg), luma(bg)
            dark = y_text < y_bg
        # outline and shadow sit on the background's side of the text luminance
        sign = 1.0 if dark else -1.0
        room = max(0.0, abs(y_bg - y_text) - self.style.min_contrast)
        y_border = min(max(y_text + sign * (self.style.min_contrast + room * rand()), 0.0), 1.0)
        y_shadow = min(max(y_text + sign * (self.style.min_contrast + room * rand()), 0.0), 1.0)
        border_color = color_with_luma(r, y_border, self.style.saturation * rand()) if lay.border else (y_border,) * 3
        shadow_color = (y_shadow,) * 3

        blur = uniform(r, self.style.blur_sigma) if rand() < self.style.p_blur else 0.0
        noise = uniform(r, self.style.noise_sigma) if rand() < self.style.p_noise else 0.0
        lowres = uniform(r, self.style.lowres_scale) if rand() < self.style.p_lowres else 1.0
        jpeg = round(uniform(r, self.style.jpeg_quality)) if rand() < self.style.p_jpeg else 0
        # (as p_frequent: no draw at 0, so that adding these levers left every other decision as it was)
        shade = (0.0, 0.0, 0.0, 0.0)
        if self.style.p_shading > 0 and rand() < self.style.p_shading:  # the edge crosses the middle 60 %
            shade = (uniform(r, self.style.shade_depth), 2.0 * math.pi * rand(), 0.2 + 0.6 * rand(),
                     0.02 + 0.5 * rand() ** 2)
        motion = (0.0, 0.0)
        if self.style.p_motion_blur > 0 and rand() < self.style.p_motion_blur:
            motion = (uniform(r, self.style.motion_blur_len), math.pi * rand())

        return RenderPlan(lay, fg=fg, bg=bg, bg_kind=bg_kind, bg_amp=bg_amp, bg_angle=bg_angle, photo=photo, edge=edge,
                          border_color=border_color, shadow_color=shadow_color, blur=blur, noise=noise,
                          lowres=lowres, jpeg=jpeg, shade=shade, motion=motion)

    def width(self, index: int) -> int:
        """Final width of ``render(index).image`` (exact), computed without rasterising or colours."""
        return self._layout(self._rng(index)).width

    def label(self, index: int) -> str:
        """The label of ``render(index)`` without rasterising."""
        return self._text(self._rng(index))[1]
