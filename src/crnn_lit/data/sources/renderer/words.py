"""Word sources: dictionary lists (drawn uniformly), a frequency list (drawn by tempered frequency), and text
with punctuation and symbols (prices, percentages, times, dates, punctuated words)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from crnn_lit.data.sources.renderer.plan import below

log = logging.getLogger(__name__)


def _fit(word: str, max_len: int, allowed: set[str] | None) -> str:
    """The word, or its lower/upper-cased form that the charset allows; "" when none fits."""
    if not word or len(word) > max_len or any(c.isspace() for c in word):
        return ""
    if allowed is None:
        return word
    return next((f for f in (word, word.lower(), word.upper()) if set(f) <= allowed), "")


def load_words(words_file: str, extra_files: Sequence[str], max_len: int, allowed: set[str] | None) -> list[str]:
    """Every usable word of ``words_file`` and of the ``extra_files`` that exist, once each, in file order.

    ALL-CAPS entries of the extra lists (MJSynth's vocabulary is upper case) are lower-cased, so that the
    style's case policy decides their case."""
    lines = Path(words_file).read_text(encoding="utf-8").splitlines()
    for extra in extra_files:  # optional: e.g. a vocabulary under ../shared/data
        if Path(extra).is_file():
            lines += [w.lower() if w.isupper() else w for w in Path(extra).read_text("utf-8").splitlines()]
        else:
            log.warning("renderer: extra word list %s not found, rendering without it (renderer.extra_words_files)",
                        extra)
    words, seen = [], set()
    for line in lines:
        w = _fit(line.strip(), max_len, allowed)
        if w and w not in seen:
            seen.add(w)
            words.append(w)
    if not words:
        raise ValueError(f"no usable words in {words_file!r}")
    return words


def load_frequencies(path: str, power: float, max_len: int, allowed: set[str] | None
                     ) -> tuple[list[str], list[float] | None]:
    """Words of a ``word<TAB>zipf`` file and the cumulative probabilities of drawing each, ∝ 10^(power·zipf).

    ``power`` tempers the frequencies: 1 follows them (``the`` ≈ 4 % of all draws), 0 is uniform."""
    words, weights = [], []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        word, _, zipf = line.partition("\t")
        w = _fit(word.strip(), max_len, allowed)
        if not w:
            continue
        try:
            weights.append(10.0 ** (power * float(zipf)))
        except ValueError:
            raise ValueError(f"{path}:{n}: expected word<TAB>zipf, got {line!r}") from None
        words.append(w)
    if not words:
        return [], None
    total, acc, cdf = sum(weights), 0.0, []
    for v in weights:
        acc += v / total
        cdf.append(acc)
    cdf[-1] = 1.0 + 1e-12
    return words, cdf


def _digits(r: random.Random, n: int) -> str:
    return "".join(_pick(r, "0123456789") for _ in range(n))


def _pick(r: random.Random, options: Sequence):
    return options[below(r, len(options))]


def _wrapped(r: random.Random, word: str) -> str:
    """The word quoted, bracketed or tagged: "FRESH", (new), -SALE-, @home, #1, &Co."""
    opening, closing = _pick(r, (('"', '"'), ("'", "'"), ("(", ")"), ("-", "-"), ("@", ""), ("#", ""), ("&", "")))
    return opening + word + closing


# Text as signs and shop windows write it. The label is the text as drawn; the charset's label policy then
# decides, as for real crops: `oov: remove` (lowercase36) keeps "$4.99" → "499", a printable charset keeps it all.
SYMBOLIC: tuple[Callable[[random.Random, str], str], ...] = (
    # a price: $12.99, 4,50, #350.00
    lambda r, w: _pick(r, ("$", "#", "")) + _digits(r, 1 + int(r.random() * 3)) + _pick(r, (".", ",")) + _digits(r, 2),
    # a percentage: 30%, -50%
    lambda r, w: _pick(r, ("", "-", "+")) + _digits(r, 1 + int(r.random() * 2)) + "%",
    # a time: 9:30, 11:05pm
    lambda r, w: f"{1 + int(r.random() * 12)}:{_digits(r, 2)}" + _pick(r, ("", "am", "pm", "AM", "PM")),
    # a date: 12/05, 03.11/2024
    lambda r, w: _digits(r, 2) + _pick(r, ("/", ".", "-")) + _digits(r, 2) + _pick(r, ("", "/20" + _digits(r, 2))),
    # the word punctuated: OPEN!, Joe's, SALE:
    lambda r, w: w + _pick(r, (".", ",", "!", "?", ":", ";", "'s", "'", "*")),
    _wrapped,
)


def symbolic_text(r: random.Random, word: str, max_len: int) -> str:
    """One SYMBOLIC pattern around ``word`` (or numbers), or ``word`` itself when the result is too long."""
    text = _pick(r, SYMBOLIC)(r, word)
    return text if len(text) <= max_len else word
