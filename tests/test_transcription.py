import math

import pytest
import torch

from crnn_lit.charset import Charset
from crnn_lit.transcription import GreedyDecoder, best_path, collapse


def test_b_mapping_paper_example():
    assert "".join(collapse("--hh-e-l-ll-oo-", blank="-")) == "hello"


def test_b_mapping_keeps_repeats_separated_by_blank():
    assert "".join(collapse("ll", blank="-")) == "l"
    assert "".join(collapse("l-l", blank="-")) == "ll"
    assert collapse([0, 0, 0], blank=0) == []
    assert collapse([], blank=0) == []


def _log_probs(paths: list[list[int]], classes: int, p: float = 0.9) -> torch.Tensor:
    """(T, N, C) log-probs whose best path is ``paths[n]`` with per-frame probability p."""
    steps = max(len(x) for x in paths)
    probs = torch.full((steps, len(paths), classes), (1 - p) / (classes - 1))
    for n, path in enumerate(paths):
        for t, c in enumerate(path):
            probs[t, n, c] = p
    return probs.log()


def test_best_path_batched_with_lengths():
    # charset "ab": 1 = a, 2 = b; sample 1's last two frames are padding and must be ignored
    lp = _log_probs([[1, 1, 0, 1, 2, 2], [2, 0, 2, 1, 1, 1]], classes=3)
    seqs, path_lp = best_path(lp, torch.tensor([6, 4]))
    assert seqs == [[1, 1, 2], [2, 2, 1]]
    assert torch.allclose(path_lp, torch.tensor([6 * math.log(0.9), 4 * math.log(0.9)]))


def test_greedy_decoder_texts_and_confidence():
    lp = _log_probs([[0, 3, 3, 0, 1, 0, 1, 2]], classes=4, p=0.5)
    (pred,) = GreedyDecoder(Charset("abc"))(lp, torch.tensor([8]))
    assert pred.text == "caab"
    assert math.isclose(pred.confidence, 0.5 ** 8, rel_tol=1e-5)


def test_allowed_and_blocked_chars_mask_every_decoder():
    from crnn_lit.transcription import BeamDecoder, LexiconDecoder

    charset = Charset("0123456789abcdefghijklmnopqrstuvwxyz")
    o, zero, blank = charset.chars.index("o") + 1, charset.chars.index("0") + 1, 0
    lp = torch.full((3, 1, charset.num_classes), -20.0)
    lp[0, 0, o], lp[0, 0, zero] = -0.2, -1.8  # "o", with "0" a close second
    lp[1:, 0, blank] = 0.0
    lp = lp.log_softmax(-1)
    lengths = torch.tensor([3])
    assert GreedyDecoder(charset).decode(lp, lengths)[0].text == "o"
    for decoder in (GreedyDecoder(charset, allowed_chars="0123456789"), BeamDecoder(charset, allowed_chars="0123456789"),
                    GreedyDecoder(charset, blocked_chars="O"),  # case-folded to the charset's "o"
                    LexiconDecoder(charset, allowed_chars="0123456789")):
        pred = decoder.decode(lp, lengths, lexicons=[["o", "0"]] if isinstance(decoder, LexiconDecoder) else None)
        assert pred[0].text == "0" and 0.9 < pred[0].confidence <= 1.0  # renormalized over what may be read
    with pytest.raises(ValueError, match="not in the model's charset"):
        GreedyDecoder(charset, allowed_chars="0-9")
    with pytest.raises(ValueError, match="no character"):
        GreedyDecoder(charset, allowed_chars="a", blocked_chars="a")


def test_open_vocabulary_lexicon_keeps_a_far_likelier_reading():
    """open_ratio 0 is the paper's strict mode, ∞ is lexicon-free; in between the word must be plausible."""
    from crnn_lit.transcription import LexiconDecoder

    charset = Charset("0123456789abcdefghijklmnopqrstuvwxyz")
    reading = "hallo"
    lp = torch.full((2 * len(reading) + 1, 1, charset.num_classes), -9.0)
    for t in range(lp.shape[0]):  # blank h blank a blank l ... : "hallo", with "e" a distant second at the "a"
        lp[t, 0, 0 if t % 2 == 0 else charset.chars.index(reading[t // 2]) + 1] = 0.0
    lp[3, 0, charset.chars.index("e") + 1] = -4.0
    lp = lp.log_softmax(-1)
    lengths = torch.tensor([lp.shape[0]])
    words = ["hello", "world"]
    strict = LexiconDecoder(charset, lexicon=words).decode(lp, lengths)[0]
    assert strict.text == "hello"
    assert LexiconDecoder(charset, lexicon=words, open_ratio=0.0).decode(lp, lengths)[0] == strict
    assert LexiconDecoder(charset, lexicon=words, open_ratio=math.inf).decode(lp, lengths)[0].text == reading
    ratio = strict.confidence / GreedyDecoder(charset).decode(lp, lengths)[0].confidence  # ≈ e^-4
    assert LexiconDecoder(charset, lexicon=words, open_ratio=ratio * 2).decode(lp, lengths)[0].text == reading
    assert LexiconDecoder(charset, lexicon=words, open_ratio=ratio / 2).decode(lp, lengths)[0].text == "hello"
    # per-image lists (SVT-50) stay strict whatever the ratio
    per_image = LexiconDecoder(charset, open_ratio=math.inf).decode(lp, lengths, lexicons=[words])[0]
    assert per_image.text == "hello"


def test_case_fold_scores_upper_case_labels_on_folded_posteriors_and_lower_case_ones_as_given():
    """CaseFold: 'AB' and 'B1' (no lower-case letter) are scored by CTC on p(A)+p(a), p(B)+p(b) per frame;
    'ab' as given. Checked against folded log-probs built by hand."""
    from crnn_lit.transcription.ctc import CaseFold, ctc_loss

    chars, labels = "abAB1 ", ["AB", "ab", "B1"]
    index = {c: i + 1 for i, c in enumerate(chars)}
    logits = torch.randn(10, 3, 7, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([index[c] for label in labels for c in label])
    frames, lengths = torch.full((3,), 10), torch.full((3,), 2)
    probs = logits.log_softmax(2).exp()
    by_hand = torch.stack([probs[..., 0], probs[..., 1] + probs[..., 3], probs[..., 2] + probs[..., 4],
                           probs[..., 5], probs[..., 6]], 2).log()  # blank, A|a, B|b, 1, space
    folded_index = {"A": 1, "B": 2, "1": 3, " ": 4}

    def nll(log_probs, label, n, idx):
        return torch.nn.functional.ctc_loss(log_probs[:, n:n + 1], torch.tensor([idx[c] for c in label]),
                                            torch.tensor([10]), torch.tensor([len(label)]), reduction="sum") / 2

    expected = (nll(by_hand, "AB", 0, folded_index) + nll(logits.log_softmax(2), "ab", 1, index)
                + nll(by_hand, "B1", 2, folded_index)) / 3
    got = ctc_loss(logits, targets, frames, lengths, CaseFold(chars), labels)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() < ctc_loss(logits, targets, frames, lengths).item()  # folding adds the other case's paths
    with pytest.raises(ValueError, match="both cases|upper- and lower-case"):
        CaseFold("abc0")


def test_forced_alignment_of_the_best_path_is_the_best_path():
    """Aligning the greedy reading gives each character the frames the best path spends on it and the best of
    their probabilities; a labelling that cannot fit in an image's frames has no alignment."""
    from crnn_lit.transcription.ctc import best_path, forced_alignment

    torch.manual_seed(0)
    log_probs = (3 * torch.randn(30, 4, 6)).log_softmax(2)
    lengths = torch.tensor([30, 17, 9, 3])
    sequences, _ = best_path(log_probs, lengths)
    spans = forced_alignment(log_probs, lengths, sequences)
    best = log_probs.argmax(2)
    for n, (sequence, span) in enumerate(zip(sequences, spans)):
        assert len(span) == len(sequence)
        for c, (first, last, lp) in zip(sequence, span):
            assert first <= last < lengths[n] and set(best[first:last + 1, n].tolist()) == {c}
            assert lp == pytest.approx(float(log_probs[first:last + 1, n, c].max()))
        assert [s[0] for s in span] == sorted(s[0] for s in span)
    assert forced_alignment(log_probs, lengths, [[1, 1, 1, 1, 1]] * 4)[3] is None  # needs 9 frames, has 3
