"""Lexicon-based transcription (paper §2.4): l* = argmax_{l ∈ D} p(l|y), with p(l|y) computed exactly.

Candidates. A small lexicon given per image (``decode(..., lexicons=[words, ...])``, e.g. SVT-50) is scored
whole, as in the paper. A large global lexicon (the 87,623-word MJSynth vocabulary) is searched only inside
N_δ(l′), the words within edit distance δ of the lexicon-free (greedy) result l′ (paper: δ = 3), retrieved by
``crnn_lit.transcription.candidates``. When N_δ(l′) is empty, ``fallback`` decides: ``greedy`` returns l′,
``nearest`` widens to the words at the smallest distance from l′. An image's own list takes precedence over the
global lexicon; an image with neither gets l′.

Scoring. p(l|y) for a batch of candidate words comes from one vectorized CTC forward pass
(``ctc_log_likelihoods``: alpha recursion over the extended labels of all candidates at once, in the
probability domain with each frame scaled by its most probable class, float64). Words that cannot fit into an
image's frames (``len + adjacent repeats > T``) have p = 0 and are never scored. To avoid scoring hundreds of
hopeless words, candidates are scored best-bound first, in growing chunks, under two cheap upper bounds:
every alignment of l emits each of its characters at least once, so p(l|y) ≤ min_{c ∈ l} (1 − Π_t (1 − y_t(c)));
and labellings are disjoint events, so an unscored word has p ≤ 1 − p(l′) − Σ p(words scored so far).
Scoring stops once neither bound lets a remaining word reach the best exact score, so the chosen word is the
same as scoring every candidate (``prune=False`` does exactly that; the benchmark compares both). Ties go to the
earlier candidate (lexicon order). Confidence = p(chosen l | y), the exact probability of the returned
labelling, fallbacks included.

Words. Lexicon words are normalized with the model's charset (``Charset.normalize``: NFKC, case folding);
words the charset cannot express are dropped and counted (``Lexicon.dropped`` for a loaded lexicon,
``LexiconDecoder.dropped_words`` for per-image lists passed to ``decode``), and duplicates are merged.

Lines. A lexicon holds words, so a crop read with a space inside (a model whose charset has one, reading a line)
is no candidate for it: the decoder keeps its lexicon-free reading l′, counts it (``LexiconDecoder.multi_word``)
and says so once in the log. Single-word crops are decoded as above, whatever the charset.

Configuration (Hydra). The ``lexicon`` group builds a raw ``Lexicon`` (``conf/lexicon/{none,file,
per_image}.yaml`` → ``load_lexicon``), and ``conf/decoder/lexicon.yaml`` passes it to the decoder by
interpolation, ``lexicon: ${lexicon}``; the decoder normalizes it when it receives the model's charset
(``instantiate(cfg.decoder)(charset)``). So ``decoder=lexicon lexicon=file`` decodes with the global vocabulary,
and ``decoder=lexicon lexicon=per_image`` keeps the TSV for the evaluation entry point, which passes each
image's list: ``decoder.decode(log_probs, lengths, lexicons=decoder.lexicon.lists_for(image_keys))``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from crnn_lit.charset import Charset
from crnn_lit.knobs import COUNT, Knob, Knobs, check
from crnn_lit.paths import MissingFile, find_asset
from crnn_lit.transcription.base import FUSION_KNOBS, Decoded, Decoder, lm_fusion
from crnn_lit.transcription.candidates import CandidateIndex, build_index
from crnn_lit.transcription.ctc import (
    best_path,
    ctc_log_likelihoods,
    ctc_log_likelihoods_log_space,
    min_frames,
)

FALLBACKS = ("greedy", "nearest")
log = logging.getLogger(__name__)


# --- words -----------------------------------------------------------------------------------------------

def _strict(charset: Charset) -> Charset:
    """The same alphabet with ``oov=drop``: a lexicon word is usable whole or not at all."""
    return charset if charset.oov == "drop" else Charset(charset.chars, oov="drop", name=charset.name)


def normalize_words(words: Sequence[str], charset: Charset) -> tuple[list[str], list[str]]:
    """``(kept, dropped)``: words normalized to ``charset`` (duplicates merged, order kept) and the raw words
    the charset cannot express."""
    strict = _strict(charset)
    kept: dict[str, None] = {}
    dropped: list[str] = []
    for w in words:
        n = strict.normalize(w)
        if n is None:
            dropped.append(w)
        else:
            kept.setdefault(n, None)
    return list(kept), dropped


class Lexicon:
    """Word lists for lexicon-based decoding: one global list (``words``) or one list per image (``per_image``).

    Build with [`from_file`][crnn_lit.transcription.lexicon.Lexicon.from_file] (one word per line) or ``from_tsv`` (``relative_path<TAB>w1,w2,...``).
    A lexicon is *raw* until [`normalized`][crnn_lit.transcription.lexicon.Lexicon.normalized] binds it to a charset; then ``dropped`` counts the entries the
    charset cannot express (per-image entries are counted per image) and ``dropped_examples`` shows a few.
    """

    def __init__(self, words: Sequence[str] | None = None, per_image: Mapping[str, Sequence[str]] | None = None,
                 source: str = ""):
        if (words is None) == (per_image is None):
            raise ValueError("a Lexicon has either a global word list or per-image lists")
        self.words = None if words is None else list(words)
        self.per_image = None if per_image is None else {k: list(v) for k, v in per_image.items()}
        self.source = source
        self.charset: Charset | None = None
        self.dropped = 0
        self.dropped_examples: list[str] = []

    @classmethod
    def from_file(cls, path: str | Path) -> Lexicon:
        """One word per line; a shipped word list may be given by name (``english``)."""
        path = find_asset(path, "words", "lexicon file", suffixes=(".txt",))
        words = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return cls(words=[w for w in words if w], source=str(path))

    @classmethod
    def from_tsv(cls, path: str | Path) -> Lexicon:
        path = Path(path)
        if not path.is_file():
            raise MissingFile(f"per-image lexicon file not found: {path}")
        per_image: dict[str, list[str]] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            key, sep, rest = line.partition("\t")
            if not sep:
                raise ValueError(f"{path}:{number}: expected 'relative_path<TAB>word,word,...'")
            per_image[key.strip()] = [w.strip() for w in rest.split(",") if w.strip()]
        return cls(per_image=per_image, source=str(path))

    @property
    def is_per_image(self) -> bool:
        return self.per_image is not None

    def __len__(self) -> int:
        return len(self.words) if self.words is not None else len(self.per_image)

    def __repr__(self) -> str:
        kind = f"{len(self.per_image)} per-image lists" if self.is_per_image else f"{len(self.words)} words"
        bound = f", charset={self.charset.name or 'custom'}, dropped={self.dropped}" if self.charset else ", raw"
        return f"Lexicon({kind}{bound}, source={self.source or '-'})"

    def normalized(self, charset: Charset) -> Lexicon:
        """This lexicon normalized to ``charset`` (itself if it already is)."""
        if self.charset is not None and self.charset.chars == charset.chars:
            return self
        dropped: list[str] = []
        if self.words is not None:
            words, dropped = normalize_words(self.words, charset)
            out = Lexicon(words=words, source=self.source)
        else:
            lists = {}
            for key, ws in self.per_image.items():
                lists[key], d = normalize_words(ws, charset)
                dropped.extend(d)
            out = Lexicon(per_image=lists, source=self.source)
        out.charset = charset
        out.dropped = len(dropped)
        out.dropped_examples = sorted(set(dropped))[:20]
        return out

    def for_image(self, key: str) -> list[str] | None:
        """The list of one image, None if it has none: ``key`` as in the TSV (e.g. ``images/18_01_0.png``), or else
        the longest trailing part of its path that is (``predict`` names an image by its path, e.g.
        ``data/svt/images/18_01_0.png``)."""
        if self.per_image is None:
            return None
        if key in self.per_image:
            return self.per_image[key]
        parts = Path(key).parts
        return next((self.per_image[k] for i in range(len(parts)) if (k := Path(*parts[i:]).as_posix())
                     in self.per_image), None)

    def lists_for(self, keys: Sequence[str]) -> list[list[str] | None]:
        """``lexicons=`` argument of ``Decoder.decode`` for a batch of images."""
        return [self.for_image(k) for k in keys]


def load_lexicon(source: str = "none", path: str | None = None) -> Lexicon | None:
    """Hydra entry of the ``lexicon`` group: ``none`` → None, ``file`` → global list, ``per_image`` → TSV."""
    if source == "none":
        return None
    if path is None:
        raise ValueError(f"lexicon source {source!r} needs a path")
    if source == "file":
        return Lexicon.from_file(path)
    if source == "per_image":
        return Lexicon.from_tsv(path)
    raise ValueError(f"unknown lexicon source {source!r}; choose none, file or per_image")


class EncodedWords:
    """Words as a padded class-index matrix (0 = padding), with lengths and the frames each word needs."""

    def __init__(self, words: Sequence[str], charset: Charset):
        self.words = list(words)
        self.lengths = np.array([len(w) for w in self.words], dtype=np.int64)
        width = int(self.lengths.max()) if self.words else 0
        self.codes = np.zeros((len(self.words), max(width, 1)), dtype=np.int64)
        for i, w in enumerate(self.words):
            self.codes[i, : len(w)] = charset.encode(w)
        self.min_frames = np.array([min_frames(w) for w in self.words], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.words)


# --- exact scoring ---------------------------------------------------------------------------------------

def char_log_bounds(log_probs: np.ndarray) -> np.ndarray:
    """(C,) log of 1 − Π_t (1 − y_t(c)): the probability that class c is emitted at least once — an upper
    bound of p(l|y) for every l containing c. Index 0 (blank, used as padding) is set to 0 (no constraint)."""
    with np.errstate(divide="ignore"):
        none_emitted = np.log1p(-np.exp(np.asarray(log_probs, dtype=np.float64))).sum(axis=0)
        bounds = np.log(-np.expm1(none_emitted))
    bounds[0] = 0.0
    return bounds


def best_word(log_probs: np.ndarray, encoded: EncodedWords, ids: np.ndarray | None = None, prune: bool = True,
              greedy: Sequence[int] | None = None, first_chunk: int = 8) -> tuple[int, float, int]:
    """argmax over candidate words ``ids`` (default: all) of log p(l|y) → ``(id, log p, words scored)``.

    ``prune`` scores candidates in chunks, in decreasing order of their bound (``char_log_bounds``), and
    stops as soon as no unscored candidate can beat the best exact score, by either of two upper bounds:
    its character bound, or the probability mass not yet accounted for — labellings are disjoint events, so
    an unscored word has p ≤ 1 − Σ p(scored words) − p(l′), where ``greedy`` (l′, class indices) is scored with
    the first chunk (it is usually the most probable labelling). Same answer as ``prune=False``, which scores
    every candidate. Returns ``(-1, -inf, n)`` when no candidate has a non-zero probability.
    """
    ids = np.arange(len(encoded)) if ids is None else np.asarray(ids, dtype=np.int64)
    steps = log_probs.shape[0]
    feasible = ids[encoded.min_frames[ids] <= steps]
    if feasible.size == 0:
        return -1, -math.inf, 0
    codes, lengths = encoded.codes[feasible], encoded.lengths[feasible]
    scores = np.full(feasible.size, -np.inf)
    if not prune:
        scores = ctc_log_likelihoods(log_probs, codes, lengths)
        scored = feasible.size
    else:
        bounds = char_log_bounds(log_probs)[codes].min(axis=1)
        order = np.argsort(-bounds, kind="stable")
        extra = None  # l′ as one more row of the first chunk when it is not a candidate itself
        if greedy is not None:
            row = np.zeros(codes.shape[1], dtype=codes.dtype)
            g = np.asarray(greedy, dtype=codes.dtype)[: codes.shape[1]]
            row[: g.size] = g
            same = np.flatnonzero((lengths == len(greedy)) & (codes == row).all(axis=1))
            if same.size:  # score it first
                order = np.concatenate([same[:1], order[order != same[0]]])
            elif len(greedy) <= codes.shape[1]:
                extra = row
        best, mass = -np.inf, 0.0
        start, chunk = 0, first_chunk
        while start < order.size:
            if bounds[order[start]] < best - 1e-9 or 1.0 - mass + 1e-9 < math.exp(best):
                break  # nobody left can reach the best exact score
            part = order[start:start + chunk]
            if extra is not None:
                both = ctc_log_likelihoods(log_probs, np.vstack([codes[part], extra]),
                                           np.concatenate([lengths[part], [len(greedy)]]))
                scores[part] = both[:-1]
                mass += math.exp(both[-1])
                extra = None
            else:
                scores[part] = ctc_log_likelihoods(log_probs, codes[part], lengths[part])
            best = max(best, float(scores[part].max()))
            mass += float(np.exp(scores[part]).sum())
            start += part.size
            chunk *= 4
        scored = start
    if not np.isfinite(scores).any():
        # every feasible word underflowed in the scaled forward pass: redo them in log space (rare)
        scores = ctc_log_likelihoods_log_space(log_probs, codes, lengths)
        scored += feasible.size
    i = int(np.argmax(scores))  # first maximum = earliest candidate
    if not np.isfinite(scores[i]):
        return -1, -math.inf, scored
    return int(feasible[i]), float(scores[i]), scored


# --- the decoder -----------------------------------------------------------------------------------------

class LexiconDecoder(Decoder):
    """Lexicon-based CTC decoding with exact p(l|y) (see the module docstring).

    Args:
        lexicon: a [`Lexicon`][crnn_lit.transcription.lexicon.Lexicon] (global or per-image), a plain word list, or None (then only the
            ``lexicons`` given to ``decode`` are used).
        delta: edit-distance radius δ of N_δ(l′) for the global lexicon (paper: 3).
        fallback: when N_δ(l′) is empty — ``greedy`` (return l′) or ``nearest`` (score the words at the
            smallest edit distance from l′).
        candidates: N_δ retrieval — ``symdelete`` (default, fastest) or ``rapidfuzz``.
        prune: bound-ordered early stopping of the exact scoring (identical results; False scores every word).
        open_ratio: open-vocabulary mode for the global lexicon: its best word w replaces the lexicon-free
            reading l′ only when p(w|y) ≥ open_ratio · p(l′|y); otherwise l′ stays (a name, a number, a word the
            lexicon lacks). None (or 0) is the paper's strict mode; ∞ never uses the lexicon. Per-image lists
            (SVT-50) are always strict. Calibrate it on held-out real data (``bench/results/open_lexicon.json``).
        lm: with ``open_ratio``, compare w and l′ under beam+LM's fused score log p(l|y) + α·log P_LM(l) + β·|l|
            (same meaning as in [`BeamDecoder`][crnn_lit.transcription.beam.BeamDecoder]) instead of p(l|y) alone: a misspelt l′ ("hotei") then loses
            to its word, a plausible name or number keeps its reading. On real_train (6,725 crops never trained
            on, ``bench/results/open_lexicon_rules_*.json``) this rule holds its best accuracy over a wide range of τ,
            where the plain ratio peaks narrowly.
        lm_weight: α of that score.
        length_bonus: β of that score, per character.
    """

    KNOBS: ClassVar[Knobs] = {"delta": COUNT, "open_ratio": Knob(float, 0, optional=True), **FUSION_KNOBS}

    def __init__(self, charset: Charset, lexicon: Lexicon | Sequence[str] | None = None, delta: int = 3,
                 fallback: str = "greedy", candidates: str = "symdelete", prune: bool = True,
                 open_ratio: float | None = None, lm: str | None = None, lm_weight: float = 0.0,
                 length_bonus: float = 0.0, allowed_chars: str | None = None, blocked_chars: str | None = None):
        super().__init__(charset, allowed_chars, blocked_chars)
        check(self.KNOBS, delta=delta, open_ratio=open_ratio)
        self.open_log_ratio = -math.inf if not open_ratio else math.log(open_ratio)
        self.fusion = lm_fusion(lm, charset, lm_weight, length_bonus)
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if candidates not in ("symdelete", "rapidfuzz"):
            raise ValueError(f"unknown candidates {candidates!r}; choose symdelete or rapidfuzz")
        if lexicon is not None and not isinstance(lexicon, Lexicon):
            lexicon = Lexicon(words=list(lexicon))
        self.lexicon = lexicon.normalized(charset) if lexicon is not None else None
        self.delta = int(delta)
        self.fallback = fallback
        self.candidates = candidates
        self.prune = prune
        self.dropped_words = 0  # entries of per-image lists passed to decode() that the charset cannot express
        self.multi_word = 0  # crops read with an inner space: lines, which no lexicon word can be (kept as read)
        self._encoded: EncodedWords | None = None
        self._index: CandidateIndex | None = None
        self._list_cache: dict[tuple[str, ...], tuple[EncodedWords, int]] = {}
        if self.lexicon is not None and not self.lexicon.is_per_image:
            self._encoded = EncodedWords(self.lexicon.words, charset)

    @property
    def index(self) -> CandidateIndex | None:
        """N_δ retrieval over the global lexicon, built on first use (the symmetric-delete index takes ~2 s)."""
        if self._index is None and self._encoded is not None:
            self._index = build_index(self.candidates, self._encoded.words, self.delta)
        return self._index

    def _encoded_list(self, words: Sequence[str]) -> tuple[EncodedWords, int]:
        key = tuple(words)
        hit = self._list_cache.get(key)
        if hit is None:
            kept, dropped = normalize_words(words, self.charset)
            hit = (EncodedWords(kept, self.charset), len(dropped))
            if len(self._list_cache) >= 4096:
                self._list_cache.clear()
            self._list_cache[key] = hit
        return hit

    def _score_text(self, lp: np.ndarray, text: str) -> float:
        codes = np.array([self.charset.encode(text) or [0]], dtype=np.int64)
        score = ctc_log_likelihoods(lp, codes, np.array([len(text)]))
        if not np.isfinite(score[0]) and lp.shape[0]:
            score = ctc_log_likelihoods_log_space(lp, codes, np.array([len(text)]))
        return float(score[0])

    def _decode(self, log_probs: torch.Tensor, lengths: torch.Tensor,
                lexicons: Sequence[Sequence[str] | None] | None = None) -> list[Decoded]:
        lp = log_probs.detach().to(torch.float64).cpu().numpy()  # exact scoring runs in float64
        lens = np.minimum(lengths.detach().cpu().numpy().astype(np.int64), lp.shape[0])
        sequences, _ = best_path(torch.from_numpy(lp), torch.from_numpy(lens))
        greedy = [self.charset.decode(s) for s in sequences]
        batch = lp.shape[1]
        if lexicons is not None and len(lexicons) != batch:
            raise ValueError(f"{len(lexicons)} lexicons for {batch} images")
        if lexicons is None and self.lexicon is not None and self.lexicon.is_per_image:
            raise ValueError("this decoder holds per-image lexicons: pass "
                             "lexicons=decoder.lexicon.lists_for(image_keys) to decode()")

        lines = [" " in greedy[n].strip() for n in range(batch)]  # several words: a lexicon decides one word
        own = [lexicons is not None and lexicons[n] is not None and not lines[n] for n in range(batch)]
        use_global = [not own[n] and not lines[n] and self._encoded is not None for n in range(batch)]
        found = iter(self.index.search_many([greedy[n] for n in range(batch) if use_global[n]], self.delta)
                     if any(use_global) else [])

        results: list[Decoded] = []
        for n in range(batch):
            frames = lp[: lens[n], n]
            encoded, ids = None, None
            if lines[n]:  # refused: kept as read
                if not self.multi_word:
                    log.warning("lexicon decoding picks one word per crop: crops read with a space (lines) keep "
                                "their lexicon-free reading (counted in LexiconDecoder.multi_word); decode lines "
                                "with beam_lm (an LM from your own lines: python -m crnn_lit.transcription.lm "
                                "build out.json.gz --lines lines.txt)")
                self.multi_word += 1
            elif own[n]:
                encoded, dropped = self._encoded_list(lexicons[n])
                self.dropped_words += dropped
                ids = np.arange(len(encoded))
            elif use_global[n]:
                encoded, ids = self._encoded, next(found)
                if ids.size == 0 and self.fallback == "nearest":
                    ids = self.index.nearest(greedy[n])[1]
            if encoded is not None and ids.size:
                wid, score, _ = best_word(frames, encoded, ids, prune=self.prune, greedy=sequences[n])
                if wid >= 0 and use_global[n] and self.open_log_ratio > -math.inf:
                    reading = self._score_text(frames, greedy[n])
                    margin = score - reading
                    if self.fusion is not None:
                        word = encoded.codes[wid, : encoded.lengths[wid]].tolist()
                        margin += self.fusion.word(word) - self.fusion.word(sequences[n])
                    if margin < self.open_log_ratio:  # l′ is far more likely: keep it
                        results.append(Decoded(greedy[n], math.exp(reading)))
                        continue
                if wid >= 0:
                    results.append(Decoded(encoded.words[wid], math.exp(score)))
                    continue
            # no lexicon, no candidate (or none with p > 0): l′ itself
            results.append(Decoded(greedy[n], math.exp(self._score_text(frames, greedy[n]))))
        return results
