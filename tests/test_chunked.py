"""Bounded memory: Recognizer.iter_read, predict and evaluate work through their inputs chunk by chunk, hold no more
than a chunk of images (and evaluate no log-probabilities beyond the batch being decoded), and read exactly what
they read in one piece (bench/results/predict_memory.json has the memory)."""

import weakref

import pytest

from conftest import SHARED_DATA
from crnn_lit import Recognizer

CROPS = SHARED_DATA / "real_train" / "svt" / "images"


@pytest.fixture(scope="module")
def crops():
    paths = sorted(CROPS.glob("*.png"))[:90]
    if len(paths) < 90:
        pytest.skip("needs ../shared/data/real_train/svt")
    return paths


class Alive:
    """Wraps a function returning objects; counts how many of them are alive at once (weak references)."""

    def __init__(self, fn):
        self.fn, self.alive, self.most, self.calls = fn, 0, 0, 0

    def _gone(self):
        self.alive -= 1

    def track(self, obj):
        self.alive += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(obj, self._gone)
        return obj

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.track(self.fn(*args, **kwargs))


def test_iter_read_holds_one_chunk_and_reads_what_read_reads(crops):
    recognizer = Recognizer.from_pretrained("cpu_scene_text", decoder="greedy")
    whole = recognizer.read(crops)  # one chunk (conf/predict.yaml's chunk_size is far above 90)
    prepare = recognizer.prepare = Alive(recognizer.prepare)  # every decoded, preprocessed image
    taken = []

    def inputs():  # an iterator: it is consumed as the predictions are
        for path in crops:
            taken.append(path)
            yield path

    stream = recognizer.iter_read(inputs(), chunk_size=16)
    first = next(stream)
    assert len(taken) == 16  # the first prediction needed the first chunk, nothing more
    chunked = [first, *stream]
    assert prepare.calls == 90 and prepare.most <= 16  # never two chunks' images at once
    assert [(p.image, p.text) for p in chunked] == [(p.image, p.text) for p in whole]  # input order, same readings
    assert [p.confidence for p in chunked] == pytest.approx([p.confidence for p in whole], abs=2e-6)


def test_evaluate_keeps_a_chunk_of_images_and_no_log_probabilities(crops, compose_evaluate, monkeypatch, tmp_path):
    import crnn_lit.evaluate as evaluate_module

    (tmp_path / "set").mkdir()
    labels = dict(line.split("\t", 1) for line in (CROPS.parent / "labels.tsv").read_text().splitlines())
    (tmp_path / "set" / "labels.tsv").write_text("".join(f"{p}\t{labels[f'images/{p.name}']}\n" for p in crops))
    base = ["decoder=greedy", "~decoder@lm_decoder", "error_sheet=5", f"inputs={tmp_path / 'set'}"]

    def predictions():  # key, label, reading, correct; and the confidences, by key
        rows = [row.split("\t") for row in (tmp_path / "predictions" / "set_none.tsv").read_text().splitlines()[1:]]
        return sorted(r[:3] + r[4:] for r in rows), {r[0]: float(r[3]) for r in rows}

    whole = evaluate_module.evaluate(compose_evaluate(base))
    rows, confidences = predictions()
    images, recognized = {}, {}

    def prepare_source(self, source, indices=None):
        images["tracker"] = self.prepare = images.get("tracker") or Alive(self.prepare)
        return real_prepare_source(self, source, indices)

    def recognize(self, *args, **kwargs):
        recognized["tracker"] = tracker = recognized.get("tracker") or Alive(None)
        for r in real_recognize(self, *args, **kwargs):
            tracker.track(r.log_probs)
            yield r

    real_prepare_source, real_recognize = Recognizer.prepare_source, Recognizer.recognize
    monkeypatch.setattr(Recognizer, "prepare_source", prepare_source)
    monkeypatch.setattr(Recognizer, "recognize", recognize)
    chunked = evaluate_module.evaluate(compose_evaluate([*base, "chunk_size=16"]))
    for got, expected in zip(chunked["columns"], whole["columns"], strict=True):  # timings aside, the same figures
        assert [got[k] for k in ("benchmark", "lexicon", "images", "unreadable", "accuracy")] == \
               [expected[k] for k in ("benchmark", "lexicon", "images", "unreadable", "accuracy")]
        for key in ("ned", "cer", "mean_confidence"):
            assert got[key] == pytest.approx(expected[key], rel=1e-6), key
    chunked_rows, chunked_confidences = predictions()
    assert chunked_rows == rows and chunked_confidences == pytest.approx(confidences, abs=2e-4)
    assert images["tracker"].calls == 90 and images["tracker"].most <= 16 + 5  # a chunk, and the error sheet's 5
    assert recognized["tracker"].most <= 2  # the batch being decoded (and the one just produced)
