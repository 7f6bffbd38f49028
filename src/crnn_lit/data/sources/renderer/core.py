"""WordRenderer: (seed, index) -> plan (WordPlanner) -> pixels (WordPainter); SyntheticWords: the renderer as a
map-style dataset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from crnn_lit.data.sample import Sample
from crnn_lit.data.sources.renderer.backgrounds import load_textures
from crnn_lit.data.sources.renderer.painter import WordPainter
from crnn_lit.data.sources.renderer.plan import RenderPlan
from crnn_lit.data.sources.renderer.planner import WordPlanner
from crnn_lit.data.sources.renderer.style import RenderStyle
from crnn_lit.preprocess import Preprocess


class WordRenderer:
    """Deterministic synthetic word images: ``render(index)`` is a pure function of ``(seed, index)``.

    Args:
        words_file: UTF-8 word list, one word per line (e.g. ``data/words/english.txt``).
        fonts_dir: directory searched recursively for .ttf/.otf faces (e.g. ``data/fonts``).
        preprocess: the network's input spec: images are rendered at its ``height`` (width following the word's
            aspect ratio), with its ``channels`` (1 -> HxW grayscale uint8, 3 -> HxWx3 RGB uint8); narrower than
            ``min_width`` is padded with background, wider than ``max_width`` squeezed horizontally.
        seed: stream id; different seeds give independent sample streams (e.g. train vs validation).
        max_word_len: labels are never longer than this.
        charset_chars: if given, labels only use these characters (words are lower/upper-cased to fit or
            skipped; random strings draw from its printable ASCII part).
        extra_words_files: more word lists (e.g. MJSynth's 90k vocabulary); missing files are skipped. ALL-CAPS
            entries are lower-cased, so that the style's case policy decides their case.
        textures_dir: folder of grayscale photographs used as backgrounds (``data/textures``); None: no photos.
        palette_file: measured (text, background) colour pairs (``data/colors/real_train.tsv``), drawn for a
            ``style.p_real_colors`` share of samples; None: none.
        frequency_file: ``word<TAB>zipf`` lines (``data/words/frequency/english_frequency.tsv``): the words drawn
            by frequency (``style.p_frequent``); None: none.
        style: how the images look (``RenderStyle``, or a mapping of its fields); None: its defaults.
        content: ``words`` (one word per image) or ``lines`` (a line of a receipt or a label: several words with
            the face's own spaces, numbers, prices, dates, times, phone numbers, codes and punctuation;
            ``lines``). A line's label is its text with every whitespace run
            made one space; ``max_word_len`` caps its characters (``preprocess.max_width`` null: any width).
        line_words_file: receipt vocabulary for lines (``data/words/receipt.txt``), beside ``words_file``.

    A ``WordPlanner`` (``planner``) takes every random decision and knows widths without drawing; a
    ``WordPainter`` (``painter``) turns its plans into pixels. Pickles small for loader workers: the glyph
    cache they share is shipped empty.
    """

    def __init__(
        self,
        words_file: str,
        fonts_dir: str,
        preprocess: Preprocess,
        seed: int = 0,
        max_word_len: int = 23,
        charset_chars: str | None = None,
        extra_words_files: tuple[str, ...] = (),
        textures_dir: str | None = None,
        frequency_file: str | None = None,
        style: RenderStyle | Mapping | None = None,
        palette_file: str | None = None,
        content: str = "words",
        line_words_file: str | None = None,
    ):
        style = style if isinstance(style, RenderStyle) else RenderStyle(**(style or {}))
        self.textures_dir = None if textures_dir is None else str(textures_dir)
        self.textures = load_textures(textures_dir) if textures_dir is not None else []
        if style.p_photo > 0 and not self.textures:
            raise FileNotFoundError(f"p_photo > 0 but no textures in {textures_dir!r}")
        self.planner = WordPlanner(words_file, fonts_dir, preprocess, seed, max_word_len, charset_chars,
                                   extra_words_files, frequency_file, style, palette_file, len(self.textures),
                                   content, line_words_file)
        self.painter = WordPainter(self.planner.faces, self.textures, preprocess, seed)

    @classmethod
    def from_spec(cls, spec: Mapping, preprocess: Preprocess, seed: int = 0, **kwargs) -> WordRenderer:
        """A renderer from a ``conf/renderer`` group (its assets and style), bound to the network's input spec
        and a seed by the data config that uses it: the one place that lists what a renderer config holds."""
        return cls(preprocess=preprocess, seed=seed, **dict(spec), **kwargs)

    # what the dataset, the benchmarks and callers read; the planner holds them
    @property
    def seed(self) -> int:
        return self.planner.seed

    @property
    def preprocess(self) -> Preprocess:
        return self.planner.preprocess

    @property
    def style(self) -> RenderStyle:
        return self.planner.style

    @property
    def max_word_len(self) -> int:
        return self.planner.max_word_len

    @property
    def content(self) -> str:
        return self.planner.content

    @property
    def words(self) -> list[str]:
        return self.planner.words

    @property
    def fonts(self) -> list[Path]:
        return self.planner.fonts

    def plan(self, index: int) -> RenderPlan:
        """All random decisions for ``index`` (cheap: glyph metrics only, no rasterising)."""
        return self.planner.plan(index)

    def width(self, index: int) -> int:
        """Final width of ``render(index).image`` (exact), computed without rasterising or colours."""
        return self.planner.width(index)

    def label(self, index: int) -> str:
        """The label of ``render(index)`` without rasterising."""
        return self.planner.label(index)

    def render(self, index: int) -> Sample:
        p = self.planner.plan(index)
        return Sample(image=self.painter.draw(p, index), label=p.layout.label, key=f"render:{self.seed}:{index}")

    def __call__(self, index: int) -> Sample:
        return self.render(index)


class SyntheticWords(torch.utils.data.Dataset):
    """Map-style dataset over a virtual index space of rendered words (or lines: the renderer's ``content``).

    ``dataset[i]`` is ``renderer.render(i)``; ``dataset.width(i)`` is its width without rendering. Training
    uses a huge ``length`` and samples random indices; validation a small fixed ``length`` and another seed.
    """

    def __init__(self, renderer: WordRenderer, length: int):
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.renderer = renderer
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        r = self.renderer
        return f"SyntheticWords(seed {r.seed}, {r.content}, {len(r.words):,} words, {len(r.fonts)} fonts)"

    def _check(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"index {i} out of range for SyntheticWords of length {self.length}")
        return i

    def __getitem__(self, i: int) -> Sample:
        return self.renderer.render(self._check(i))

    def width(self, i: int) -> int:
        return self.renderer.width(self._check(i))

    def size(self, i: int) -> tuple[int, int]:
        """(width, height) of image ``i`` without rendering it — the source protocol the batch sampler uses."""
        return self.width(i), self.renderer.preprocess.height
