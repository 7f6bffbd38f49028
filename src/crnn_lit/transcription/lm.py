"""Character n-gram language model, and its shallow fusion into CTC prefix beam search.

The model. P(c | h) over the characters of a word (``$`` ends it; the context ``h`` is the previous n − 1
characters, ``^``-padded at the start) with Witten–Bell interpolation: a context seen with T distinct
continuations in C weighted occurrences gives P(c|h) = (C(h c) + T · P(c|h′)) / (C + T), h′ = h without its
oldest character, down to a uniform distribution over the vocabulary (plus one slot for characters never seen in
training). Counts may be weights (frequency-weighted words). Text is case-folded to lowercase and NFKC-normalized:
the LM knows spelling, not case, so it serves case-sensitive charsets too.

Why our own: KenLM (through ``pyctcdecode`` or torchaudio's flashlight decoder) needs a native build and its
``lmplz`` binary to make a model, and pyctcdecode applies its LM at word boundaries only — scene-text words have
none. A character model of a few hundred thousand n-grams is small enough to be a gzipped JSON file
(``data/lm/``), is built in seconds by ``python -m crnn_lit.transcription.lm build``, and costs one cached dict
lookup per beam extension (``bench/decode_speed.py``).

Fusion (``LMFusion``). The beam ranks prefixes by log p(l|y) + α·log P_LM(l) + β·|l|: each new character
adds α·log P(c | h) + β, and the final beams add α·log P($ | h) before the best is chosen.

Lines. A charset with a space reads lines, and the space is scored one of two ways. A *line* LM (built with
``build --lines``: the space is in its vocabulary, ``$`` ends the line) scores it as any character, its contexts
running across words; built from words and lines (``--words … --lines …``), each word is a line of one word, so one
LM reads both crops (``english_receipts_char6``). A *word* LM (``english_char6``) scores a space as the end of the
word before it, α·log P($|h) + β, and the next word starts afresh from ``^``: each word of a line is scored as a
word, as on a word crop.
Word charsets (no space) are scored exactly as before either way.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from crnn_lit.charset import Charset
from crnn_lit.paths import find_asset

BOS, EOS = "^", "$"
FORMAT = "crnn_lit-char-ngram"


def fold(text: str) -> str:
    """What the LM reads: NFKC, lowercase."""
    return unicodedata.normalize("NFKC", text).lower()


class CharNgramLM:
    """Witten–Bell interpolated character n-gram model (see the module docstring).

    ``counts[h][c]``: weighted count of character ``c`` (or ``$``) after context ``h`` (0 … order − 1 characters).
    """

    def __init__(self, order: int, counts: dict[str, dict[str, float]]):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = int(order)
        self.counts = counts
        self.vocab = sorted({c for cont in counts.values() for c in cont})
        self._uniform = 1.0 / (len(self.vocab) + 1)  # + 1: a character never seen in training
        self._stats = {h: (sum(cont.values()), len(cont)) for h, cont in counts.items()}
        self._log_prob = lru_cache(maxsize=1 << 20)(self._compute_log_prob)

    # --- building ----------------------------------------------------------------------------------------
    @classmethod
    def build(cls, words: Iterable[tuple[str, float]], order: int, min_count: float = 0.0) -> CharNgramLM:
        """Counts from ``(word, weight)`` pairs; n-grams of order ≥ 3 below ``min_count`` are dropped (size)."""
        counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for word, weight in words:
            word = fold(word)
            if not word or weight <= 0:
                continue
            padded = BOS * (order - 1) + word + EOS
            for i in range(order - 1, len(padded)):
                c = padded[i]
                for k in range(order):  # contexts of length 0 … order − 1
                    counts[padded[i - k:i]][c] += weight
        kept = {}
        for h, cont in counts.items():
            if len(h) >= 2 and min_count > 0:
                cont = {c: n for c, n in cont.items() if n >= min_count}
            if cont:
                kept[h] = dict(cont)
        return cls(order, kept)

    # --- scoring -----------------------------------------------------------------------------------------
    def log_prob(self, context: str, char: str) -> float:
        """log P(char | context); ``context`` is the folded text so far (only its last order − 1 characters
        matter, ``^``-padded), ``char`` one character or ``$`` (end of word)."""
        n = self.order - 1
        return self._log_prob((BOS * n + context)[len(context):] if n else "", char)

    def _compute_log_prob(self, h: str, char: str) -> float:
        p = self._uniform
        for k in range(len(h) + 1):  # lowest order first: "", h[-1:], ...
            ctx = h[len(h) - k:]
            stats = self._stats.get(ctx)
            if stats is None:
                break  # a longer context containing an unseen one is unseen too
            total, distinct = stats
            p = (self.counts[ctx].get(char, 0.0) + distinct * p) / (total + distinct)
        return math.log(p)

    def word_log_prob(self, word: str) -> float:
        """log P_LM(word), end of word included."""
        word = fold(word)
        return sum(self.log_prob(word[:i], c) for i, c in enumerate(word + EOS))

    # --- files -------------------------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rounded = {h: {c: float(f"{n:.4g}") for c, n in sorted(cont.items())} for h, cont in sorted(self.counts.items())}
        doc = {"format": FORMAT, "order": self.order, "meta": meta or {}, "counts": rounded}
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(data)  # mtime=0: the same corpus gives the same bytes
        return path

    @classmethod
    def load(cls, path: str | Path) -> CharNgramLM:
        """The LM file at ``path``, or a shipped one by name (``english_char6``, or the checkout's
        ``data/lm/english_char6.json.gz`` from any working folder)."""
        return _load_cached(str(find_asset(path, "lm", "language model file", suffixes=(".json.gz",)).resolve()))


@lru_cache(maxsize=4)
def _load_cached(path: str) -> CharNgramLM:
    if not Path(path).is_file():
        raise FileNotFoundError(f"language model file not found: {path} (build one: python -m crnn_lit.transcription.lm build)")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a gzipped JSON language model ({e})") from e
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format={doc.get('format')!r})")
    return CharNgramLM(doc["order"], doc["counts"])


class LMFusion:
    """Shallow-fusion scores for ``prefix_beam_search`` over a charset's classes.

    ``bonus(prefix, c)`` = α·log P(c | prefix) + β for a new class ``c`` after the class sequence ``prefix``;
    ``end(prefix)`` = α·log P($ | prefix). Both never exceed ``max_bonus`` = β and ``0`` (α ≥ 0), which the search
    uses as its pruning bound. Scores are cached per (last n − 1 classes, class).
    """

    def __init__(self, lm: CharNgramLM, charset: Charset, alpha: float, beta: float):
        if alpha < 0:
            raise ValueError(f"LM weight alpha must be >= 0, got {alpha}")
        self.lm, self.alpha, self.beta = lm, float(alpha), float(beta)
        self.max_bonus = self.beta
        self._chars = [""] + [fold(c) or c for c in charset.chars]  # class → LM text (blank = "")
        self._keep = max(lm.order - 1, 0)
        self._cache: dict[tuple, float] = {}
        # a word LM on a line charset: the space class ends a word (module docstring); None: a plain character
        self._space = charset.chars.index(" ") + 1 if " " in charset and " " not in lm.vocab else None

    def _context(self, prefix: tuple[int, ...]) -> str:
        """The LM context of ``prefix``: its last n − 1 characters, from the current word's start when spaces
        are word boundaries (a shorter context is ``^``-padded: the start of a word)."""
        tail = prefix[-self._keep:] if self._keep else ()
        if self._space is not None and self._space in tail:
            tail = tail[len(tail) - tail[::-1].index(self._space):]
        chars = self._chars
        return "".join(chars[c] for c in tail)

    def bonus(self, prefix: tuple[int, ...], c: int) -> float:
        key = (prefix[-self._keep:] if self._keep else (), c)
        value = self._cache.get(key)
        if value is None:
            char = EOS if c == self._space else self._chars[c]  # a word boundary: the word before it ends
            value = self.alpha * self.lm.log_prob(self._context(prefix), char) + self.beta
            self._cache[key] = value
        return value

    def end(self, prefix: tuple[int, ...]) -> float:
        if self._space is not None and prefix and prefix[-1] == self._space:
            return 0.0  # the last word was ended by its space
        return self.alpha * self.lm.log_prob(self._context(prefix), EOS)

    def word(self, classes: Sequence[int]) -> float:
        """α·log P_LM(l) + β·|l| of a whole labelling: what the search adds to log p(l|y) for it."""
        classes = tuple(classes)
        return sum(self.bonus(classes[:i], c) for i, c in enumerate(classes)) + self.end(classes)


# --- the build CLI ---------------------------------------------------------------------------------------

def _read_words(path: Path) -> list[str]:
    return [line.split("\t")[0].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_frequencies(path: Path) -> list[tuple[str, float]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, zipf = line.partition("\t")
        if word.strip() and zipf.strip():
            out.append((word.strip(), float(zipf)))
    return out


def read_lines(path: Path) -> list[str]:
    """The text lines of a file, one per line, every whitespace run one space; a ``labels.tsv`` (``path<TAB>
    label``) gives its labels."""
    lines = (line.rsplit("\t", 1)[-1] for line in path.read_text(encoding="utf-8").splitlines())
    return [text for text in (" ".join(line.split()) for line in lines) if text]


def corpus(words_files: list[Path], frequency_file: Path | None, frequency_power: float, digits_share: float,
           seed: int = 0) -> list[tuple[str, float]]:
    """``(word, weight)`` pairs: every listed word once (types), the frequency list's words again with weight
    ∝ 10^(power·Zipf) scaled to the same total mass (tokens, tempered), and number strings holding
    ``digits_share`` of the total — scene text has numbers that no dictionary lists."""
    types = {fold(w) for path in words_files for w in _read_words(path)}
    pairs = [(w, 1.0) for w in sorted(types)]
    if frequency_file is not None:
        freq = _read_frequencies(frequency_file)
        raw = [10 ** (frequency_power * z) for _, z in freq]
        scale = len(pairs) / sum(raw) if raw else 0.0
        pairs += [(w, r * scale) for (w, _), r in zip(freq, raw)]
    if digits_share > 0:
        rng = random.Random(seed)
        mass = sum(w for _, w in pairs)
        numbers = [str(i) for i in range(1000)] + ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 8)))
                                                    for _ in range(9000)]
        weight = mass * digits_share / (1 - digits_share) / len(numbers)
        pairs += [(n, weight) for n in numbers]
    return pairs


def mix(words: list[tuple[str, float]], lines: list[str], lines_share: float) -> list[tuple[str, float]]:
    """One corpus of ``(text, weight)`` for an LM that reads words and lines: each word a line of one word, the
    lines weighted equally to hold ``lines_share`` (0 < share < 1) of the total mass."""
    if not lines:
        return words
    if not words:
        return [(line, 1.0) for line in lines]
    mass = sum(w for _, w in words)
    return words + [(line, mass * lines_share / (1 - lines_share) / len(lines)) for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crnn_lit.transcription.lm",
                                     description="Character n-gram language models for decoder=beam_lm.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build an LM file from word lists or text lines")
    b.add_argument("out", type=Path, help="output file (.json.gz)")
    b.add_argument("--words", type=Path, nargs="*", default=[], help="word lists, one word per line (first column)")
    b.add_argument("--lines", type=Path, nargs="*", default=[],
                   help="text lines, one per line (or a labels.tsv: its labels): a line LM, the space a character "
                        "and $ the line's end (for charsets with a space); with --words, each word is a line of one "
                        "word and the lines hold --lines-share of the mass")
    b.add_argument("--lines-share", type=float, default=0.15,
                   help="share of the lines in the mass of a words + lines LM")
    b.add_argument("--frequency", type=Path, default=None, help="word<TAB>Zipf frequency list (tokens, tempered)")
    b.add_argument("--frequency-power", type=float, default=0.5, help="tempering of the frequency weights")
    b.add_argument("--digits-share", type=float, default=0.1, help="share of number strings in the corpus")
    b.add_argument("--order", type=int, default=6)
    b.add_argument("--min-count", type=float, default=2.0, help="drop n-grams (order >= 3) weighing less")
    s = sub.add_parser("score", help="log P_LM of words")
    s.add_argument("lm", type=Path)
    s.add_argument("words", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "score":
        lm = CharNgramLM.load(args.lm)
        for w in args.words:
            print(f"{w}\t{lm.word_log_prob(w):.3f}")
        return 0
    missing = [p for p in [*args.words, *args.lines, args.frequency] if p is not None and not p.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(map(str, missing))}")
    if not args.words and not args.lines and args.frequency is None:
        parser.error("give --words, --lines and/or --frequency")
    if not 0 < args.lines_share < 1:
        parser.error(f"--lines-share must be in (0, 1), got {args.lines_share}")
    lines = [line for path in args.lines for line in read_lines(path)]
    if args.lines and not lines:
        parser.error(f"no text line in {', '.join(map(str, args.lines))}")
    words = corpus(args.words, args.frequency, args.frequency_power, args.digits_share) if (
        args.words or args.frequency is not None) else []
    pairs = mix(words, lines, args.lines_share)
    lm = CharNgramLM.build(pairs, args.order, args.min_count)
    meta = {"words": [p.name for p in args.words],
            **({"lines": [p.name for p in args.lines], "lines_share": args.lines_share} if args.lines else {}),
            "frequency": args.frequency.name if args.frequency else None,
            "frequency_power": args.frequency_power, "digits_share": args.digits_share, "min_count": args.min_count}
    path = lm.save(args.out, meta)
    ngrams = sum(len(c) for c in lm.counts.values())
    print(f"wrote {path}: order {lm.order}, {len(lm.counts):,} contexts, {ngrams:,} n-grams, "
          f"{path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
