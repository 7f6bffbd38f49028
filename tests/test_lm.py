"""Character n-gram language model and its shallow fusion into CTC prefix beam search (decoder=beam_lm)."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

from crnn_lit.charset import Charset
from crnn_lit.config import PROJECT_ROOT
from crnn_lit.transcription import BeamDecoder
from crnn_lit.transcription.lm import EOS, CharNgramLM, LMFusion, main

WORDS = [("hello", 3.0), ("help", 2.0), ("hell", 1.0), ("yellow", 1.0), ("low", 1.0), ("42", 0.5)]
SHIPPED_LM = PROJECT_ROOT / "data" / "lm" / "english_char6.json.gz"


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one_in_seen_and_unseen_contexts(order):
    lm = CharNgramLM.build(WORDS, order)
    for context in ["", "h", "hel", "yello", "zzz", "4"]:
        seen = sum(math.exp(lm.log_prob(context, c)) for c in lm.vocab)
        unseen = math.exp(lm.log_prob(context, "Q"))  # one slot for every never-seen character
        assert math.isclose(seen + unseen, 1.0, rel_tol=1e-9)


def test_counts_and_witten_bell_by_hand():
    lm = CharNgramLM.build([("ab", 2.0), ("ac", 1.0)], order=2)
    # contexts: "" sees a, b, c, $ (weights 3, 2, 1, 3); "a" sees b (2) and c (1)
    assert lm.counts["a"] == {"b": 2.0, "c": 1.0} and lm.counts["^"] == {"a": 3.0}
    uniform = 1 / 5  # vocabulary {$, a, b, c} + the unseen slot
    p_b_unigram = (2 + 4 * uniform) / (9 + 4)
    assert math.isclose(math.exp(lm.log_prob("a", "b")), (2 + 2 * p_b_unigram) / (3 + 2), rel_tol=1e-12)
    assert lm.word_log_prob("AB") == lm.word_log_prob("ab")  # case-folded
    assert lm.word_log_prob("ab") > lm.word_log_prob("ba")


def test_save_load_round_trip_and_bad_files(tmp_path):
    lm = CharNgramLM.build(WORDS, 4)
    path = lm.save(tmp_path / "lm.json.gz", meta={"source": "test"})
    back = CharNgramLM.load(path)
    assert back.order == 4
    for w in ["hello", "yellow", "xyz", "42"]:
        assert math.isclose(back.word_log_prob(w), lm.word_log_prob(w), rel_tol=1e-3)
    with pytest.raises(FileNotFoundError, match="language model file not found"):
        CharNgramLM.load(tmp_path / "missing.json.gz")
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(b'{"format": "other"}'))
    with pytest.raises(ValueError, match="not a crnn_lit-char-ngram file"):
        CharNgramLM.load(tmp_path / "bad.json.gz")


def test_build_cli_writes_a_usable_model(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("street\nstore\nstop\n")
    freq = tmp_path / "freq.tsv"
    freq.write_text("street\t5.1\nstop\t4.9\n")
    out = tmp_path / "lm.json.gz"
    assert main(["build", str(out), "--words", str(words), "--frequency", str(freq), "--order", "4",
                 "--min-count", "0"]) == 0
    assert "order 4" in capsys.readouterr().out
    lm = CharNgramLM.load(out)
    assert lm.word_log_prob("stop") > lm.word_log_prob("spot")
    assert "1" in lm.vocab  # the number strings are part of the corpus (--digits-share)
    with pytest.raises(SystemExit):
        main(["build", str(out), "--words", str(tmp_path / "nope.txt")])


def word_logits(chars: str, frames: list[dict[str, float]]) -> torch.Tensor:
    """(T, 1, C) log-probabilities: each frame gives the listed characters their probability, the blank the rest."""
    rows = []
    for frame in frames:
        p = np.full(len(chars) + 1, 1e-6)
        for c, v in frame.items():
            p[chars.index(c) + 1] = v
        p[0] = max(1.0 - sum(frame.values()), 1e-6)
        rows.append(np.log(p / p.sum()))
    return torch.tensor(np.array(rows), dtype=torch.float32).unsqueeze(1)


def test_the_lm_corrects_an_ambiguous_letter():
    charset = Charset("abcdefghijklmnopqrstuvwxyz")
    lm_path = CharNgramLM.build(WORDS, 4)
    frames = [{"h": 0.9}, {}, {"c": 0.55, "e": 0.4}, {}, {"l": 0.9}, {}, {"l": 0.9}, {}, {"o": 0.9}, {}]
    lp = word_logits(charset.chars, frames)
    lengths = torch.tensor([len(frames)])
    plain = BeamDecoder(charset)(lp, lengths)[0]
    assert plain.text == "hcllo"
    fused = BeamDecoder(charset)
    fused.fusion = LMFusion(lm_path, charset, alpha=0.5, beta=0.0)
    pred = fused(lp, lengths)[0]
    assert pred.text == "hello"
    # the confidence stays the acoustic p(l|y): lower than that of the plain reading
    assert pred.confidence < plain.confidence


def test_zero_weights_equal_plain_beam_search():
    rng = np.random.default_rng(0)
    charset = Charset("abcdehlowy")
    lm = CharNgramLM.build(WORDS, 5)
    for _ in range(30):
        lp = torch.from_numpy(rng.normal(size=(12, 3, 11)) * rng.uniform(0.5, 4)).log_softmax(2)
        lengths = torch.tensor([12, 7, 3])
        plain = BeamDecoder(charset, beam_width=6)
        fused = BeamDecoder(charset, beam_width=6)
        fused.fusion = LMFusion(lm, charset, alpha=0.0, beta=0.0)
        assert plain.beams(lp, lengths) == fused.beams(lp, lengths)


def test_fusion_with_an_unpruned_beam_is_the_exact_fused_argmax():
    """Wide beam, no pruning: the result maximises log p(l|y) + α log P_LM(l) + β|l| over all labellings."""
    import itertools

    from crnn_lit.transcription import collapse

    rng = np.random.default_rng(3)
    charset = Charset("ehlo")
    lm = CharNgramLM.build(WORDS, 3)
    alpha, beta = 0.7, 0.4
    for _ in range(15):
        steps = 5
        lp = torch.from_numpy(rng.normal(size=(steps, 1, 5)) * 2).log_softmax(2)
        probs = lp[:, 0].double().exp().numpy()
        exact: dict[tuple, float] = {}
        for path in itertools.product(range(5), repeat=steps):
            key = tuple(collapse(path, blank=0))
            exact[key] = exact.get(key, 0.0) + float(np.prod(probs[np.arange(steps), path]))
        fused_score = {k: math.log(v) + alpha * lm.word_log_prob(charset.decode(k)) + beta * len(k)
                       for k, v in exact.items()}
        decoder = BeamDecoder(charset, beam_width=10_000, prune_mass=1.0, prune_top_k=None)
        decoder.fusion = LMFusion(lm, charset, alpha=alpha, beta=beta)
        pred = decoder(lp, torch.tensor([steps]))[0]
        best = max(fused_score, key=fused_score.get)
        assert pred.text == charset.decode(best)
        assert math.isclose(pred.confidence, exact[best], rel_tol=1e-4)


def test_lm_end_of_word_is_scored():
    lm = CharNgramLM.build(WORDS, 4)
    fusion = LMFusion(lm, Charset("ehlo"), alpha=1.0, beta=0.0)
    hell = (2, 1, 3, 3)  # h e l l
    assert math.isclose(fusion.end(hell), lm.log_prob("hell", EOS))
    assert fusion.bonus(hell, 4) == pytest.approx(lm.log_prob("hell", "o"))


@pytest.mark.skipif(not SHIPPED_LM.is_file(), reason="the shipped LM is built by data/lm/README.md")
def test_beam_lm_config_builds_with_the_shipped_lm():
    from hydra.utils import instantiate

    from crnn_lit.config import compose_config

    cfg = compose_config(["decoder=beam_lm"], config_name="predict")
    decoder = instantiate(cfg.decoder)(Charset.from_file(PROJECT_ROOT / "data/charsets/lowercase36.txt"))
    assert decoder.fusion is not None and decoder.fusion.alpha == cfg.decoder.lm_weight > 0
    lm = decoder.fusion.lm
    assert lm.word_log_prob("street") > lm.word_log_prob("strtee")


def test_open_lexicon_with_the_lm_takes_the_word_for_a_misspelt_reading_and_keeps_a_plausible_one(tmp_path):
    """Open-vocabulary lexicon decoding under beam+LM's fused score: a misspelt reading ("hcllo", which the
    ratio rule keeps) loses to its word; a reading the LM finds as plausible as the word ("yellow" next to the
    lexicon's "hello") is kept; τ → 0 is still strict mode and τ = ∞ lexicon-free."""
    from crnn_lit.transcription import LexiconDecoder

    charset = Charset("abcdefghijklmnopqrstuvwxyz")
    lm = CharNgramLM.build(WORDS, 4).save(tmp_path / "lm.json.gz")
    fused = {"lm": str(lm), "lm_weight": 1.0, "length_bonus": 0.0}
    lexicon = ["hello", "world"]
    misspelt = word_logits(charset.chars, [{"h": 0.9}, {}, {"c": 0.7, "e": 0.25}, {}, {"l": 0.9}, {}, {"l": 0.9}, {},
                                           {"o": 0.9}, {}])
    lengths = torch.tensor([misspelt.shape[0]])
    assert LexiconDecoder(charset, lexicon=lexicon, open_ratio=1.0)(misspelt, lengths)[0].text == "hcllo"
    assert LexiconDecoder(charset, lexicon=lexicon, open_ratio=1.0, **fused)(misspelt, lengths)[0].text == "hello"

    plausible = word_logits(charset.chars, [{"y": 0.7, "h": 0.25}, {}, {"e": 0.9}, {}, {"l": 0.9}, {}, {"l": 0.9}, {},
                                            {"o": 0.9}, {}, {"w": 0.9}, {}])
    lengths = torch.tensor([plausible.shape[0]])
    strict = LexiconDecoder(charset, lexicon=lexicon)(plausible, lengths)[0]
    assert strict.text == "hello"
    assert LexiconDecoder(charset, lexicon=lexicon, open_ratio=1.0, **fused)(plausible, lengths)[0].text == "yellow"
    assert LexiconDecoder(charset, lexicon=lexicon, open_ratio=1e-30, **fused)(plausible, lengths)[0] == strict
    never = LexiconDecoder(charset, lexicon=lexicon, open_ratio=math.inf, **fused)
    assert never(misspelt, torch.tensor([misspelt.shape[0]]))[0].text == "hcllo"


def test_evaluate_open_column_uses_the_beam_lm_settings_and_falls_back_without_them():
    """One copy of α, β and the LM (presets.LM_FUSION) serves beam_lm and the open lexicon column (lexicon_lm):
    dropping the beam+LM column (~decoder@lm_decoder) leaves the calibrated fused test as it is; without its LM
    (lexicon_decoder.lm=null) the column's test is the plain ratio."""
    from hydra.utils import instantiate

    from crnn_lit.config import compose_config

    charset = Charset("abcdefghijklmnopqrstuvwxyz0123456789")
    cfg = compose_config([], config_name="evaluate")
    fused = instantiate(cfg.lexicon_decoder, lexicon=["hello"])(charset)
    assert fused.fusion is not None and fused.open_log_ratio == pytest.approx(math.log(10))
    assert (fused.fusion.alpha, fused.fusion.beta) == (cfg.lm_decoder.lm_weight, cfg.lm_decoder.length_bonus)
    without_column = instantiate(compose_config(["~decoder@lm_decoder"], config_name="evaluate").lexicon_decoder,
                                 lexicon=["hello"])(charset)
    assert (without_column.fusion.alpha, without_column.fusion.beta) == (fused.fusion.alpha, fused.fusion.beta)
    plain = instantiate(compose_config(["lexicon_decoder.lm=null"], config_name="evaluate").lexicon_decoder,
                        lexicon=["hello"])(charset)
    assert plain.fusion is None and plain.open_log_ratio == fused.open_log_ratio
