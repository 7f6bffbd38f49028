"""Lines of any width: read whole (T grows with W) or in overlapping windows whose frame posteriors are merged;
word models read as they were trained (wider crops squeezed to max_width, warned with a count)."""

import itertools
import logging

import numpy as np
import pytest
import torch
from rapidfuzz.distance import Levenshtein

from conftest import SHARED_DATA, TINY_MODEL
from crnn_lit.model import build_model
from crnn_lit.preprocess import Preprocess
from crnn_lit.reading.inference import TorchBackend, read_windowed, recognize, width_batches, window_spans
from crnn_lit.reading.recognizer import Recognizer


def test_window_spans_cover_the_line_on_frame_boundaries():
    spans = window_spans(1203, 400, 128, 4)
    assert spans[0] == (0, 400) and spans[-1][1] == 1203 and all(s % 4 == 0 for s, _ in spans)
    assert all(b[0] <= a[1] - 128 for a, b in itertools.pairwise(spans))  # overlaps of at least 128 px
    assert window_spans(300, 400, 128, 4) == [(0, 300)]


def test_windowed_posteriors_equal_the_whole_line_for_a_convolutional_model():
    """Without a recurrent layer a frame sees only its receptive field, so the windows' merged posteriors are the
    whole line's wherever that field lies inside a window: everywhere, once each overlap is cut in its middle."""
    torch.manual_seed(0)
    model = build_model(TINY_MODEL["backbone"], {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "none"},
                        37, 1).eval()
    backend = TorchBackend(model)
    image = torch.rand(1, 32, 1500) * 2 - 1
    (batch,) = width_batches([image], 1, ["x"], output_length=backend.output_length, width_multiple=4)
    (whole,) = recognize(backend, iter([batch]))
    windowed = read_windowed(backend, image, "x", "", window=400, overlap=128, width_multiple=4)
    assert windowed.log_probs.shape == whole.log_probs.shape and int(windowed.lengths[0]) == int(whole.lengths[0])
    torch.testing.assert_close(windowed.log_probs, whole.log_probs, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def shipped():
    return Recognizer.from_pretrained("cpu_scene_text", "greedy")


def _words(reader: Recognizer, min_width: int) -> tuple[list[np.ndarray], list[str]]:
    """real_train IIIT5K crops the shipped model reads right alone and confidently, at height 32, until they are min_width wide."""
    from crnn_lit.data.sources import open_source

    source = open_source(SHARED_DATA / "real_train" / "iiit5k", "folder", split="train")
    crops, words, width = [], [], 0
    for i in range(len(source)):
        sample = source[i]
        label = reader.charset.normalize(sample.label)
        if not label or len(label) < 4 or not label.isalpha() or sample.image.shape[1] > 3 * sample.image.shape[0]:
            continue
        crop = np.asarray(reader.preprocess(sample.image)[0].add(1).mul(127.5).round().byte())  # 32 px high, gray
        alone = reader.read([crop])[0]
        if alone.text != label or alone.confidence < 0.95:
            continue
        crops.append(crop)
        words.append(label)
        width += crop.shape[1]
        if width > min_width:
            return crops, words
    pytest.skip("not enough real_train words")


@pytest.mark.skipif(not (SHARED_DATA / "real_train" / "iiit5k").is_dir(), reason="shared data not found")
def test_a_line_wider_than_1000_px_reads_as_its_words(shipped, caplog):
    """Words the shipped model reads right, side by side in one 32-px-high line over 1,000 px wide, read as their
    concatenation (the model has no space) whole and in windows (measured: 3 of 75 characters wrong, at word joins
    a word model never saw); left to the word model's own max_width the line
    is squeezed, and the warning says how many crops were and how to read them."""
    crops, words = _words(shipped, 1100)
    line = np.concatenate(crops, axis=1)
    assert line.shape == (32, line.shape[1]) and line.shape[1] > 1000
    truth = "".join(words)
    cer = {}
    for window in (100_000, 400):
        reader = Recognizer(shipped.backend, Preprocess(), shipped.decoder, 64, 64, window=window)
        cer[window] = Levenshtein.distance(reader.read([line])[0].text, truth) / len(truth)
    with caplog.at_level(logging.WARNING):
        squeezed = shipped.read([line, crops[0]])
    cer["squeezed"] = Levenshtein.distance(squeezed[0].text, truth) / len(truth)
    # a word model (trained on crops up to 400 px, no neighbours) errs at a few word joins, never more
    assert cer[100_000] <= 0.08 and cer[400] <= 0.08 and cer["squeezed"] > 0.3
    assert squeezed[1].text == words[0]
    assert "1 of 2 crops are wider than the model's max_width (400 px" in caplog.text and "window=400" in caplog.text


def test_a_line_preprocessing_has_no_width_bound():
    """max_width null (lines): training buckets and inference take a crop at its own width"""
    line = Preprocess(max_width=None)
    assert line.resize.width_for(3000, 48) == 2000 and list(line.resize.widths_for(np.array([[3000, 48]]))) == [2000]
    assert line(np.zeros((48, 3000), np.uint8)).shape == (1, 32, 2000)
    assert Preprocess().resize.width_for(3000, 48) == 400  # a word spec still squeezes
