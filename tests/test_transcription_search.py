"""Beam search, exact CTC scoring, N_δ retrieval and lexicon-based decoding against brute force.

Brute force = enumerate every alignment π ∈ C^T of a tiny problem, sum p(π) per labelling B(π).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from crnn_lit.charset import Charset
from crnn_lit.transcription import (
    BeamDecoder,
    GreedyDecoder,
    LexiconDecoder,
    RapidfuzzIndex,
    SymDeleteIndex,
    collapse,
    ctc_log_likelihoods,
)
from crnn_lit.transcription.candidates import BKTree
from crnn_lit.transcription.ctc import ctc_log_likelihoods_log_space
from crnn_lit.transcription.lexicon import EncodedWords, Lexicon, best_word, load_lexicon
from oracles import LinearScan


def labelling_probs(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """p(l|y) for every labelling reachable in T frames, by summing p(π) over all C^T alignments."""
    steps, classes = log_probs.shape
    probs = np.exp(log_probs)
    out: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(classes), repeat=steps):
        out[tuple(collapse(path, blank=0))] += float(np.prod(probs[np.arange(steps), path]))
    return dict(out)


def random_log_probs(rng: np.random.Generator, steps: int, classes: int, batch: int = 1) -> torch.Tensor:
    scale = rng.uniform(0.5, 4.0)
    return torch.from_numpy(rng.normal(size=(steps, batch, classes)) * scale).log_softmax(2)


def alphabet(classes: int) -> Charset:
    return Charset("abcdefgh"[: classes - 1])


# --- prefix beam search -----------------------------------------------------------------------------------

def test_wide_unpruned_beam_equals_exhaustive_search():
    rng = np.random.default_rng(0)
    for _ in range(40):
        classes, steps = int(rng.integers(2, 5)), int(rng.integers(1, 7 if rng.random() < 0.5 else 5))
        lp = random_log_probs(rng, steps, classes)
        exact = labelling_probs(lp[:, 0].double().numpy())
        decoder = BeamDecoder(alphabet(classes), beam_width=10_000, prune_mass=1.0, prune_top_k=None)
        beam = dict(decoder.beams(lp, torch.tensor([steps]))[0])
        # an unbounded beam holds every reachable labelling with its exact total probability
        assert set(beam) == set(exact)
        for labelling, p in exact.items():
            assert math.isclose(math.exp(beam[labelling]), p, rel_tol=1e-4, abs_tol=1e-12)
        best = max(exact, key=exact.get)
        (pred,) = decoder(lp, torch.tensor([steps]))
        assert pred.text == decoder.charset.decode(best)
        assert math.isclose(pred.confidence, exact[best], rel_tol=1e-4)


def test_default_beam_finds_the_exhaustive_argmax_on_peaked_outputs():
    rng = np.random.default_rng(1)
    for _ in range(25):
        classes, steps = 4, 6
        lp = random_log_probs(rng, steps, classes) * 2  # sharper
        lp = lp.log_softmax(2)
        exact = labelling_probs(lp[:, 0].double().numpy())
        best = max(exact, key=exact.get)
        (pred,) = BeamDecoder(alphabet(classes))(lp, torch.tensor([steps]))
        assert pred.text == alphabet(classes).decode(best)
        assert pred.confidence <= exact[best] * (1 + 1e-5)  # a pruned search can only lose alignments


def test_beam_respects_per_sample_lengths():
    rng = np.random.default_rng(2)
    cs = alphabet(5)
    lp = random_log_probs(rng, 9, 5, batch=4)
    lengths = torch.tensor([9, 4, 1, 0])
    batch = BeamDecoder(cs, beam_width=5)(lp, lengths)
    for n in range(4):
        single = BeamDecoder(cs, beam_width=5)(lp[: lengths[n], n : n + 1], lengths[n : n + 1])[0]
        assert batch[n].text == single.text
        assert math.isclose(batch[n].confidence, single.confidence, rel_tol=1e-9)
    assert batch[3].text == "" and batch[3].confidence == 1.0


# --- exact scoring ------------------------------------------------------------------------------------------

def test_ctc_forward_equals_sum_over_enumerated_alignments():
    rng = np.random.default_rng(3)
    for _ in range(30):
        classes, steps = int(rng.integers(2, 5)), int(rng.integers(1, 7))
        lp = random_log_probs(rng, steps, classes)[:, 0].double().numpy()
        exact = labelling_probs(lp)
        labels = [tuple(int(c) for c in rng.integers(1, classes, size=int(rng.integers(0, 5)))) for _ in range(6)]
        labels += [(1, 1), (1,), ()]  # repeats need a blank in between; the empty labelling = all blanks
        codes = np.zeros((len(labels), 5), dtype=np.int64)
        for i, label in enumerate(labels):
            codes[i, : len(label)] = label
        lengths = np.array([len(label) for label in labels])
        got = ctc_log_likelihoods(lp, codes, lengths)
        torch_got = ctc_log_likelihoods_log_space(lp, codes, lengths)
        for i, label in enumerate(labels):
            p = exact.get(label, 0.0)
            if p == 0.0:
                assert got[i] == -np.inf and torch_got[i] == -np.inf
            else:
                assert math.isclose(math.exp(got[i]), p, rel_tol=1e-9)
                assert math.isclose(math.exp(torch_got[i]), p, rel_tol=1e-6)


def test_forward_survives_very_unlikely_words():
    # each frame gives the word's characters ~e^-60: far below the best path, still ranked exactly
    steps, classes = 20, 4
    lp = np.full((steps, classes), -60.0)
    lp[:, 0] = 0.0
    encoded = EncodedWords(["abc", "ab", "cc"], alphabet(classes))
    wid, score, _ = best_word(lp, encoded)
    reference = ctc_log_likelihoods_log_space(lp, encoded.codes, encoded.lengths)
    assert wid == int(np.argmax(reference)) and math.isclose(score, reference.max(), rel_tol=1e-9)


# --- N_δ retrieval ---------------------------------------------------------------------------------------

def random_words(r: random.Random, letters: str, n: int, max_len: int) -> list[str]:
    return sorted({"".join(r.choice(letters) for _ in range(r.randint(1, max_len))) for _ in range(n)})


def test_every_retrieval_equals_a_linear_scan():
    r = random.Random(4)
    for trial in range(120):
        letters = "ab" if trial % 3 == 0 else "abcde" if trial % 3 == 1 else "abcdefghijklmnop"
        words = random_words(r, letters, r.randint(0, 80), r.randint(1, 10))
        delta = r.randint(0, 3)
        indexes = [BKTree(words), RapidfuzzIndex(words), SymDeleteIndex(words, max_delta=max(delta, r.randint(0, 3)))]
        reference = LinearScan(words)
        queries = ["".join(r.choice(letters + "z") for _ in range(r.randint(0, 11))) for _ in range(8)]
        expected = [reference.search(q, delta) for q in queries]
        for index in indexes:
            for q, e in zip(queries, expected):
                assert np.array_equal(index.search(q, delta), e), (index.name, words, q, delta)
            assert all(np.array_equal(a, b) for a, b in zip(index.search_many(queries, delta), expected))
        d, ids = reference.nearest(queries[0])
        if words:
            assert np.array_equal(ids, reference.search(queries[0], d)) and (d == 0 or not reference.search(queries[0], d - 1).size)


def test_retrieval_on_a_larger_lexicon():
    r = random.Random(5)
    words = random_words(r, "etaoinshrdlucmfw", 3000, 12)
    queries = [w[: r.randint(0, len(w))] + "xy"[: r.randint(0, 2)] for w in r.sample(words, 30)]
    reference = LinearScan(words)
    for index in (SymDeleteIndex(words, 3), RapidfuzzIndex(words), BKTree(words)):
        for q in queries:
            assert np.array_equal(index.search(q, 3), reference.search(q, 3)), (index.name, q)


def test_symdelete_rejects_a_wider_delta_than_built_for():
    with pytest.raises(ValueError, match="delta <= 2"):
        SymDeleteIndex(["abc"], max_delta=2).search("abc", 3)


# --- lexicon-based decoding -----------------------------------------------------------------------------

def test_lexicon_decoder_picks_the_most_probable_word():
    rng = np.random.default_rng(6)
    r = random.Random(6)
    cs = alphabet(4)  # "abc"
    for _ in range(20):
        steps = int(rng.integers(2, 7))
        lp = random_log_probs(rng, steps, 4)
        exact = labelling_probs(lp[:, 0].double().numpy())
        lexicon = random_words(r, "abc", 8, 4)
        (pred,) = LexiconDecoder(cs)(lp, torch.tensor([steps]), lexicons=[lexicon])
        scores = {w: exact.get(tuple(cs.encode(w)), 0.0) for w in lexicon}
        best = max(scores.values())
        if best == 0.0:  # no word fits into T frames: the greedy answer is returned
            assert pred.text == GreedyDecoder(cs)(lp, torch.tensor([steps]))[0].text
            continue
        winners = [w for w in lexicon if scores[w] == best]
        assert pred.text == winners[0]
        assert math.isclose(pred.confidence, best, rel_tol=1e-9)


def test_global_lexicon_uses_n_delta_of_the_greedy_result():
    rng = np.random.default_rng(7)
    r = random.Random(7)
    cs = alphabet(5)  # "abcd"
    words = random_words(r, "abcd", 200, 6)
    decoders = {kind: LexiconDecoder(cs, Lexicon(words=words), delta=2, candidates=kind)
                for kind in ("symdelete", "rapidfuzz")}
    exhaustive = LexiconDecoder(cs, Lexicon(words=words), delta=2, prune=False)
    for _ in range(15):
        steps = 8
        lp = (random_log_probs(rng, steps, 5, batch=3) * 2).log_softmax(2)
        lengths = torch.tensor([8, 6, 3])
        greedy = GreedyDecoder(cs)(lp, lengths)
        results = {kind: d(lp, lengths) for kind, d in decoders.items()}
        reference = exhaustive(lp, lengths)
        for n in range(3):
            frames = lp[: lengths[n], n].double().numpy()
            near = LinearScan(words).search(greedy[n].text, 2)
            scores = {words[i]: ctc_log_likelihoods(frames, EncodedWords([words[i]], cs).codes, np.array([len(words[i])]))[0]
                      for i in near}
            finite = {w: s for w, s in scores.items() if np.isfinite(s)}
            expected = max(finite, key=finite.get) if finite else greedy[n].text
            for kind in results:
                assert results[kind][n].text == expected, kind
            assert reference[n].text == expected


def test_bound_pruned_scoring_equals_scoring_every_word():
    rng = np.random.default_rng(9)
    r = random.Random(9)
    cs = alphabet(7)  # "abcdef"
    encoded = EncodedWords(random_words(r, "abcdef", 400, 7), cs)
    saved = 0
    for _ in range(40):
        steps = int(rng.integers(4, 16))
        sharp = rng.uniform(0.5, 6.0)  # from diffuse to very peaked outputs
        lp = torch.from_numpy(rng.normal(size=(steps, 7)) * sharp).log_softmax(1).numpy()
        greedy = collapse(lp.argmax(1).tolist(), blank=0)
        full = best_word(lp, encoded, prune=False)
        pruned = best_word(lp, encoded, prune=True, greedy=greedy)
        assert pruned[0] == full[0] and (pruned[1] == full[1] or math.isclose(pruned[1], full[1], rel_tol=1e-12))
        saved += full[2] - pruned[2]
    assert saved > 0  # the bounds do skip words


def test_lexicon_decoder_respects_per_sample_lengths():
    rng = np.random.default_rng(8)
    cs = alphabet(5)
    lp = random_log_probs(rng, 10, 5, batch=3)
    lengths = torch.tensor([10, 5, 2])
    lexicon = ["ab", "abc", "dcb", "a", "bd", "dd"]
    batch = LexiconDecoder(cs)(lp, lengths, lexicons=[lexicon] * 3)
    for n in range(3):
        garbage = lp.clone()
        garbage[lengths[n]:, n] = torch.randn(10 - int(lengths[n]), 5).log_softmax(1)  # padding must not matter
        alone = LexiconDecoder(cs)(lp[: lengths[n], n : n + 1], lengths[n : n + 1], lexicons=[lexicon])[0]
        again = LexiconDecoder(cs)(garbage, lengths, lexicons=[lexicon] * 3)[n]
        assert batch[n] == alone == again or (batch[n].text == alone.text == again.text and
                                             math.isclose(batch[n].confidence, alone.confidence, rel_tol=1e-9))


def test_out_of_charset_words_are_dropped_and_counted(tmp_path):
    cs = Charset("abcdefghijklmnopqrstuvwxyz0123456789")
    lexicon = Lexicon(words=["Hello", "HELLO", "héllo", "a-b", "world", "ｗｏｒｌｄ"]).normalized(cs)
    assert lexicon.words == ["hello", "world"]  # case folded, NFKC (full width), accents folded, duplicates merged
    assert lexicon.dropped == 1 and lexicon.dropped_examples == ["a-b"]

    (tmp_path / "words.txt").write_text("THE\nCAFÉ\n\nparis\n", encoding="utf-8")
    (tmp_path / "lex.tsv").write_text("images/a.png\tTHE,CAFÉ,DOOR\nimages/b.png\tO'NEIL,BAR\n", encoding="utf-8")
    from_file = load_lexicon("file", str(tmp_path / "words.txt")).normalized(cs)
    assert from_file.words == ["the", "cafe", "paris"] and from_file.dropped == 0
    per_image = load_lexicon("per_image", str(tmp_path / "lex.tsv")).normalized(cs)
    assert per_image.lists_for(["images/a.png", "images/b.png", "x.png"]) == [["the", "cafe", "door"], ["bar"], None]
    assert per_image.dropped == 1
    assert load_lexicon("none") is None

    # a charset that would *remove* unknown characters from labels still drops whole lexicon words
    removing = Charset(cs.chars, oov="remove")
    assert Lexicon(words=["a-b", "ab"]).normalized(removing).words == ["ab"]

    # per-image lists given to decode(): dropped entries are counted on the decoder
    decoder = LexiconDecoder(cs)
    lp = torch.full((6, 2, cs.num_classes), -20.0)
    lp[:, :, 0] = 0.0
    decoder(lp.log_softmax(2), torch.tensor([6, 6]), lexicons=[["ok", "n/a", "€5"], ["ok"]])
    assert decoder.dropped_words == 2


def _peaked(cs: Charset, text: str, steps: int) -> torch.Tensor:
    """Log-probs whose greedy reading is ``text`` (one frame per character, blanks elsewhere), p = 0.9."""
    lp = torch.full((steps, 1, cs.num_classes), math.log(0.1 / (cs.num_classes - 1)))
    path = [0] * steps
    for i, c in enumerate(cs.encode(text)):
        path[2 * i + 1] = c
    for t, c in enumerate(path):
        lp[t, 0, c] = math.log(0.9)
    return lp


def test_empty_n_delta_falls_back_as_configured():
    cs = Charset("abcdefghijklmnopqrstuvwxyz")
    words = ["house", "horse", "mouse"]
    lp = _peaked(cs, "qzxjk", 12)
    lengths = torch.tensor([12])
    (greedy,) = LexiconDecoder(cs, words, delta=1, fallback="greedy")(lp, lengths)
    assert greedy.text == "qzxjk"
    p = math.exp(ctc_log_likelihoods(lp[:, 0].double().numpy(), np.array([cs.encode("qzxjk")]), np.array([5]))[0])
    assert math.isclose(greedy.confidence, p, rel_tol=1e-9)  # exact p(l'|y)

    decoder = LexiconDecoder(cs, words, delta=1, fallback="nearest")
    (nearest,) = decoder(lp, lengths)
    assert nearest.text in words  # not the greedy reading: the nearest words were scored
    frames = lp[:, 0].double().numpy()
    encoded = EncodedWords(words, cs)
    scores = ctc_log_likelihoods(frames, encoded.codes, encoded.lengths)  # all three are 5 edits away
    assert nearest.text == words[int(np.argmax(scores))]

    with pytest.raises(ValueError, match="fallback"):
        LexiconDecoder(cs, words, fallback="closest")


def test_no_lexicon_and_per_image_lexicon_requirements():
    cs = Charset("abc")
    lp = _peaked(cs, "abc", 8)
    (pred,) = LexiconDecoder(cs)(lp, torch.tensor([8]))
    assert pred.text == "abc"  # no lexicon at all: l'
    decoder = LexiconDecoder(cs, Lexicon(per_image={"x.png": ["abc"]}))
    with pytest.raises(ValueError, match="lists_for"):
        decoder(lp, torch.tensor([8]))
    assert decoder(lp, torch.tensor([8]), lexicons=decoder.lexicon.lists_for(["x.png"]))[0].text == "abc"


@pytest.mark.parametrize("option", ["greedy", "beam", "beam_lm", "lexicon", "lexicon_lm"])
def test_every_decoder_option_builds_from_the_predict_config(option):
    from hydra.utils import instantiate

    from crnn_lit.config import CONFIG_DIR, PROJECT_ROOT, compose_config
    from crnn_lit.transcription import GreedyDecoder

    assert sorted(p.stem for p in (CONFIG_DIR / "decoder").glob("*.yaml")) == ["beam", "beam_lm", "greedy", "lexicon",
                                                                             "lexicon_lm", "model"]
    assert instantiate(compose_config(["decoder=model"], config_name="predict").decoder).options == {}  # Recognizer's
    cfg = compose_config([f"decoder={option}"], config_name="predict")
    if option.endswith("_lm") and not (PROJECT_ROOT / "data/lm" / f"{cfg.decoder.lm}.json.gz").is_file():
        pytest.skip("the shipped LM is built by data/lm/README.md")
    decoder = instantiate(cfg.decoder)(Charset.from_file(PROJECT_ROOT / "data/charsets/lowercase36.txt"))
    kind = {"greedy": GreedyDecoder, "beam": BeamDecoder, "beam_lm": BeamDecoder, "lexicon": LexiconDecoder,
            "lexicon_lm": LexiconDecoder}
    assert type(decoder) is kind[option]
    lp = torch.full((3, 1, 37), -10.0)
    lp[0, 0, 13], lp[1, 0, 0], lp[2, 0, 11] = 0.0, 0.0, 0.0  # c, blank, a (class 1 is "0")
    assert decoder(lp, torch.tensor([3]))[0].text == "ca"


def test_configs_compose_and_build():
    from hydra.utils import instantiate

    from crnn_lit.config import PROJECT_ROOT, compose_config

    charset = Charset.from_file(PROJECT_ROOT / "data/charsets/lowercase36.txt")
    cfg = compose_config(["decoder=beam"], config_name="predict")
    beam = instantiate(cfg.decoder)(charset)
    assert isinstance(beam, BeamDecoder) and beam.beam_width == 10
    cfg = compose_config(["decoder=lexicon", "lexicon=file"], config_name="predict")
    assert cfg.decoder.lexicon.source == "file" and cfg.decoder.delta == 3
    cfg = compose_config(["decoder=lexicon"], config_name="predict")
    decoder = instantiate(cfg.decoder)(charset)
    assert isinstance(decoder, LexiconDecoder) and decoder.lexicon is None
    if (SHARED_DATA / "benchmarks/svt/lexicon50.tsv").is_file():
        cfg = compose_config(["decoder=lexicon", "lexicon=per_image"], config_name="predict")
        decoder = instantiate(cfg.decoder)(charset)
        assert decoder.lexicon.is_per_image and len(decoder.lexicon) == 647
        assert "door" in decoder.lexicon.for_image("images/18_01_0.png")


def test_decoders_by_name_carry_their_settings_in_python():
    """``decoder(name, charset)`` builds what conf/decoder/<name>.yaml builds, with no Hydra; the LM settings of
    beam_lm live in crnn_lit.transcription.presets alone."""
    from crnn_lit.config import PROJECT_ROOT
    from crnn_lit.transcription import beam_lm, decoder

    charset = Charset.from_file(PROJECT_ROOT / "data/charsets/lowercase36.txt")
    fused = beam_lm(charset)
    assert (fused.beam_width, fused.fusion.alpha, fused.fusion.beta) == (10, 0.7, 1.5)
    assert decoder("beam_lm", charset, beam_width=3).beam_width == 3
    assert decoder("lexicon", charset, lexicon=["hotel"]).lexicon.words == ["hotel"]
    assert decoder("beam", charset).fusion is None
    with pytest.raises(ValueError, match="unknown decoder 'beamlm'; named ones: greedy, beam, beam_lm, lexicon"):
        decoder("beamlm", charset)
