"""The LM beam on lines: the space as a word boundary for a word LM, a line LM built from one's own lines,
case-folded scoring for cased and punctuated charsets, and lexicon decoders that refuse multi-word crops."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from crnn_lit.charset import Charset
from crnn_lit.transcription import BeamDecoder, LexiconDecoder
from crnn_lit.transcription.lm import EOS, CharNgramLM, LMFusion, main

LINE = Charset.from_file("upper69")  # upper case, digits, punctuation, space: receipts


def classes(charset: Charset, text: str) -> tuple[int, ...]:
    return tuple(charset.encode(text))


def test_a_word_lm_scores_each_word_of_a_line_as_a_word():
    lm = CharNgramLM.load("english_char6")
    fusion = LMFusion(lm, LINE, alpha=0.7, beta=1.5)
    words = 0.7 * (lm.word_log_prob("cash") + lm.word_log_prob("total"))  # case-folded: CASH is cash
    assert fusion.word(classes(LINE, "CASH TOTAL")) == pytest.approx(words + 1.5 * 10)
    # the space ends the word before it: after a whole word it is likely, inside one it is not
    space = classes(LINE, " ")[0]
    assert fusion.bonus(classes(LINE, "CASH"), space) > fusion.bonus(classes(LINE, "CAS"), space) + 0.7 * 2


def test_the_beam_with_a_word_lm_keeps_the_spaces_it_sees():
    """The issue's case: greedy read `CAFE FELIS`, beam + LM dropped the space (a character the word LM never
    saw). A crafted posterior whose space frame is 0.6 likely now keeps it."""
    text = "CAFE FELIS"
    probs = torch.full((2 * len(text) + 1, 1, LINE.num_classes), 1e-4)
    for t in range(probs.shape[0]):
        probs[t, 0, 0] = 1.0
    for i, c in enumerate(text):
        frame = probs[2 * i + 1, 0]
        frame[0] = 0.4 if c == " " else 0.05
        frame[LINE.encode(c)[0]] = 0.6 if c == " " else 0.95
    log_probs = (probs / probs.sum(-1, keepdim=True)).log()
    lengths = torch.tensor([probs.shape[0]])
    fused = BeamDecoder(LINE, lm="english_char6", lm_weight=0.7, length_bonus=1.5)
    assert fused.decode(log_probs, lengths)[0].text == text


def test_build_a_line_lm_from_labels(tmp_path, capsys):
    labels = tmp_path / "labels.tsv"
    labels.write_text("a.jpg\tTOTAL  RM 5.00\nb.jpg\tCASH : 10.00\nc.jpg\t \n" * 3, encoding="utf-8")
    out = tmp_path / "receipts.json.gz"
    assert main(["build", str(out), "--lines", str(labels), "--order", "4", "--min-count", "0"]) == 0
    lm = CharNgramLM.load(out)
    assert " " in lm.vocab and "T" not in lm.vocab  # lines, case-folded
    assert lm.log_prob("total", " ") > lm.log_prob("total", EOS)  # `total` is followed by a space on these lines
    fusion = LMFusion(lm, LINE, alpha=1.0, beta=0.0)  # a line LM: the space is a character
    assert fusion.word(classes(LINE, "TOTAL RM 5.00")) == pytest.approx(lm.word_log_prob("total rm 5.00"))


def test_build_one_lm_from_words_and_lines(tmp_path):
    """Words and lines in one LM (the default reader's): each word a line of one word, the lines holding
    --lines-share of the mass."""
    words, labels = tmp_path / "words.txt", tmp_path / "labels.tsv"
    words.write_text("cash\ntotal\nhello\n", encoding="utf-8")
    labels.write_text("a.jpg\tTOTAL : 5.00\nb.jpg\tCASH : 10.00\n" * 3, encoding="utf-8")
    out = tmp_path / "mixed.json.gz"
    args = ["build", str(out), "--words", str(words), "--lines", str(labels), "--digits-share", "0", "--order", "4",
            "--min-count", "0"]
    assert main([*args, "--lines-share", "0.25"]) == 0
    lm = CharNgramLM.load(out)
    # three words of weight 1 end three times; six lines of weight 3·0.25/0.75/6 end once more in all
    assert lm.counts[""][EOS] == pytest.approx(4.0)
    assert lm.log_prob("total", " ") > lm.log_prob("hello", " ")  # the lines' spacing, not the words'
    assert lm.log_prob("hell", "o") > lm.log_prob("hell", " ")  # the words' spelling
    for share in ("0", "1"):
        with pytest.raises(SystemExit):
            main([*args, "--lines-share", share])


def test_lexicon_decoding_refuses_a_multi_word_crop(caplog):
    text = "AB CD"
    probs = torch.full((2 * len(text) + 1, 2, LINE.num_classes), 1e-4)
    probs[:, :, 0] = 1.0
    for n, reading in enumerate((text, "ABD")):
        for i, c in enumerate(reading):
            probs[2 * i + 1, n, 0] = 0.01
            probs[2 * i + 1, n, LINE.encode(c)[0]] = 0.99
    decoder = LexiconDecoder(LINE, lexicon=["ABC", "ABCD"])
    with caplog.at_level(logging.WARNING):
        read = decoder.decode((probs / probs.sum(-1, keepdim=True)).log(), torch.tensor([11, 7]))
    assert [p.text for p in read] == ["AB CD", "ABC"]  # the line kept as read; the word decoded with the lexicon
    assert decoder.multi_word == 1 and "one word per crop" in caplog.text


def test_word_charsets_score_as_before():
    """No space in the charset: contexts and bonuses are the plain word LM's (the shipped readings' path)."""
    lm = CharNgramLM.load("english_char6")
    lower = Charset.from_file("lowercase36")
    fusion = LMFusion(lm, lower, alpha=0.7, beta=1.5)
    assert fusion._space is None
    assert fusion.word(classes(lower, "hello")) == pytest.approx(0.7 * lm.word_log_prob("hello") + 1.5 * 5)


def _unsure_space(charset: Charset, text: str, at: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A posterior that reads ``text`` surely, except character ``at`` (a space) at probability ``p``."""
    probs = torch.full((2 * len(text) + 1, 1, charset.num_classes), 1e-4)
    probs[:, 0, 0] = 1.0
    for i, c in enumerate(text):
        frame = probs[2 * i + 1, 0]
        frame[0] = 1 - (p if i == at else 0.95)
        frame[charset.encode(c)[0]] = p if i == at else 0.95
    return (probs / probs.sum(-1, keepdim=True)).log(), torch.tensor([probs.shape[0]])


def test_the_default_readers_lm_keeps_the_receipts_spacing():
    """Why the default reader fuses the words + receipts LM: SROIE writes `KEY : value`; a faint space before the
    colon (p 0.3) is kept by it, and dropped by the word LM at the same weights."""
    from crnn_lit.checkpoint import load_model
    from crnn_lit.paths import find_asset

    pretrained = find_asset("ppocr_v6_small.pt", "pretrained", "model")
    reading = load_model(pretrained).reading
    sidecar = json.loads(pretrained.with_suffix(".onnx.json").read_text(encoding="utf-8"))["reading"]
    assert reading == sidecar and reading["lm"] == "english_receipts_char6"  # the .pt and the .onnx read alike
    charset = Charset.from_file("printable95")
    weights = {k: reading[k] for k in ("lm_weight", "length_bonus")}
    for text, at in (("GST AMT : RM5.33", 7), ("ITEM(S) : 4", 7)):
        log_probs, lengths = _unsure_space(charset, text, at, 0.3)
        read = {lm: BeamDecoder(charset, lm=lm, **weights).decode(log_probs, lengths)[0].text
                for lm in ("english_receipts_char6", "english_char6")}
        assert read == {"english_receipts_char6": text, "english_char6": text[:at] + text[at + 1:]}
