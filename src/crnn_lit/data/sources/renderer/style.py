"""RenderStyle: every probability and range the renderer draws from; conf/renderer/*.yaml fill it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class RenderStyle:
    """How rendered words look: every probability and range the renderer draws from (no paths, no sizes).

    The defaults are the renderer as it was before the MJSynth-style effects (``conf/renderer/v1.yaml``);
    ``conf/renderer/default.yaml`` holds the style crnn_lit trains with.

    Attributes:
    p_upper: probability of rendering a dictionary word in UPPER CASE.
    p_capitalized: probability of Capitalizing a lowercase dictionary word.
    p_frequent: probability that a dictionary word comes from the frequency list (``frequency_file``), drawn
        ∝ 10^(frequency_power · Zipf), instead of uniformly from the word lists.
    frequency_power: tempering of those frequencies (1: as counted, 0: uniform).
    p_digits: probability of a random string (digits only or mixed letters/digits) instead of a word.
    p_symbols: probability that a word becomes text with punctuation or symbols (a price, a percentage, a time,
        a date, the word punctuated or in quotes: ``words.SYMBOLIC``); the label is the text as drawn.
    random_len: (min, max) length of random strings.
    font_size: (min, max) font size in px at which glyphs are rasterised (before height normalisation).
    p_spacing: probability of non-default letter spacing.
    char_spacing: (min, max) extra letter spacing as a fraction of the font size, when applied.
    margin_x: (min, max) horizontal margin on each side, fraction of the font size.
    margin_y: (min, max) vertical margin above and below, fraction of the font size.
    p_dark_text: probability of dark text on a lighter background (else light on darker).
    min_contrast: minimum luminance difference (0..1) between text and any background pixel.
    saturation: max colour saturation (0 = gray only, 1 = as colourful as the luminance allows).
    p_real_colors: probability that text and background colours are a pair measured on real crops (the
        renderer's ``palette_file``), luminances jittered and moved apart to ``min_contrast`` + the background's
        amplitude if closer, instead of drawn from ``p_dark_text``/``saturation``.
    p_gradient: probability of a linear-gradient background.
    p_texture: probability of a smooth procedural noise texture background (else flat colour).
    bg_amplitude: max luminance deviation of gradient/texture backgrounds around their base colour.
    p_border: probability of an outline around the glyphs.
    p_shadow: probability of a drop shadow.
    max_rotation: max absolute rotation in degrees.
    max_shear: max absolute horizontal shear (italic-like slant, dx/dy).
    p_perspective: probability of a perspective tilt.
    max_perspective: max relative size change across the word caused by perspective.
    p_curve: probability of a curved baseline (text on an arc: each glyph shifted vertically, a parabola over
        the word, never rotated).
    max_curve: max vertical offset of the word's ends from its middle, as a fraction of the font size (the
        sign, up or down, is random).
    p_blur: probability of a Gaussian blur.
    blur_sigma: (min, max) blur sigma in output pixels.
    p_noise: probability of additive Gaussian noise.
    noise_sigma: (min, max) noise standard deviation in 0..255 units.
    p_tight_y: probability that the crop fits the word's own ink vertically (as annotated boxes do)
            instead of the face's full ascender-to-descender extent.
    p_bold: probability of thickening the strokes by one canvas pixel (signage is mostly bold).
    p_neighbours: probability, per side, of other text cut by the crop: a sliver of a line above/below
            (never taller than that margin), a part of one glyph of a neighbouring word left/right (at most
            half a glyph, at least a word space away).
    p_photo: probability of a photo background (a random crop, scale and mirror of one texture).
    photo_amplitude: max luminance deviation of photo backgrounds around their base colour.
    p_edge: probability of a straight luminance step in the background near the top or bottom (a sign's
            border), within the background's amplitude.
    font_weights: {glob on the font's path below fonts_dir: weight} (first match wins, others weigh 1), e.g.
        ``{"aenigma/*": 0.3}`` draws the display faces less often; {} draws every face equally.
    p_lowres: probability of down-sampling the finished image and sampling it back up (low resolution).
    lowres_scale: (min, max) down-sampling factor.
    p_jpeg: probability of JPEG compression artefacts.
    p_shading: probability of uneven light: the image darkened on one side of a line across it (a cast shadow
        when the edge is sharp, a light fall-off when it is soft); darkening only, so that nothing saturates
        and the text's contrast shrinks at most by that factor.
    shade_depth: (min, max) darkening on the shaded side (0..1 of the luminance).
    p_motion_blur: probability of linear motion blur (camera shake) in a random direction.
    motion_blur_len: (min, max) length of the motion blur in output pixels.
    jpeg_quality: (min, max) JPEG quality.

    Lines only (``content: lines``; words ignore them):
    p_line_upper: share of lines in capitals (receipt style); the others keep mixed case.
    word_space: (min, max) width of a space, drawn per line, as a multiple of the face's own space advance.
    p_double_space: probability that a gap between words is drawn two spaces wide (the label keeps one space).
    p_tight_punct: probability that a key's colon hugs it (``CASH:``; else ``CASH :`` or no colon).
    """

    p_upper: float = 0.1
    p_capitalized: float = 0.2
    p_digits: float = 0.1
    p_symbols: float = 0.0
    p_frequent: float = 0.0
    frequency_power: float = 0.5
    random_len: tuple[int, int] = (1, 10)
    font_size: tuple[int, int] = (18, 36)
    p_spacing: float = 0.3
    char_spacing: tuple[float, float] = (-0.02, 0.2)
    margin_x: tuple[float, float] = (0.03, 0.3)
    margin_y: tuple[float, float] = (0.02, 0.2)
    p_dark_text: float = 0.65
    min_contrast: float = 0.35
    saturation: float = 0.6
    p_real_colors: float = 0.0
    p_gradient: float = 0.25
    p_texture: float = 0.25
    bg_amplitude: float = 0.12
    p_border: float = 0.07
    p_shadow: float = 0.07
    max_rotation: float = 2.0
    max_shear: float = 0.15
    p_perspective: float = 0.3
    max_perspective: float = 0.1
    p_blur: float = 0.25
    blur_sigma: tuple[float, float] = (0.3, 0.9)
    p_noise: float = 0.4
    noise_sigma: tuple[float, float] = (1.0, 6.0)
    font_weights: dict = field(default_factory=dict)
    p_tight_y: float = 0.0
    p_bold: float = 0.0
    p_neighbours: float = 0.0
    p_photo: float = 0.0
    photo_amplitude: float = 0.3
    p_edge: float = 0.0
    p_lowres: float = 0.0
    lowres_scale: tuple[float, float] = (0.35, 0.8)
    p_jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (20, 80)
    p_curve: float = 0.0
    max_curve: float = 0.3
    p_shading: float = 0.0
    shade_depth: tuple[float, float] = (0.2, 0.5)
    p_motion_blur: float = 0.0
    motion_blur_len: tuple[float, float] = (2.0, 5.0)
    p_line_upper: float = 0.6
    word_space: tuple[float, float] = (0.9, 1.3)
    p_double_space: float = 0.05
    p_tight_punct: float = 0.6

    def __post_init__(self):
        for name, value in ((f.name, getattr(self, f.name)) for f in fields(self)):
            if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
                object.__setattr__(self, name, tuple(value))  # YAML lists -> tuples (picklable)
            elif type(value).__name__ == "DictConfig":
                object.__setattr__(self, name, dict(value))
        if not 0.0 <= self.min_contrast + max(self.bg_amplitude, self.photo_amplitude) <= 0.95:
            raise ValueError("min_contrast + bg_amplitude (and + photo_amplitude) must stay below 0.95")
        if not 0.0 <= self.shade_depth[0] <= self.shade_depth[1] < 1.0:
            raise ValueError(f"shade_depth must be 0 <= min <= max < 1, got {self.shade_depth}")
