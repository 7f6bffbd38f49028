"""The Python API: `Recognizer` reads what `predict` reads, from every kind of input, torch or ONNX."""

import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import ROOT
from crnn_lit import Recognizer
from crnn_lit.paths import ConfigError

WORDS = ["coffee", "station", "hotel", "2024"]


def draw(word: str, mode: str = "L") -> Image.Image:
    """A clean printed word, as the shipped model reads it."""
    font = ImageFont.truetype(str(ROOT / "data/fonts/dejavu/DejaVuSans-Bold.ttf"), 40)
    image = Image.new(mode, (int(font.getlength(word)) + 20, 56), 235 if mode == "L" else (235, 230, 200))
    ImageDraw.Draw(image).text((10, 4), word, font=font, fill=20 if mode == "L" else (20, 30, 90))
    return image


@pytest.fixture(scope="module")
def shipped():
    return Recognizer.from_pretrained("cpu_scene_text", decoder="greedy")


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "words").mkdir()
    for i, word in enumerate(WORDS):
        draw(word).save(tmp_path / "words" / f"{i}.png")
    return tmp_path / "words"


def test_reads_what_predict_reads(shipped, folder, compose_predict):
    from crnn_lit.predict import predict

    got = shipped.read(folder)
    assert [p.text for p in got] == WORDS
    assert [p.image for p in got] == [str(folder / f"{i}.png") for i in range(4)]  # <folder>/<path inside it>
    assert all(0.5 < p.confidence <= 1 for p in got)
    rows = predict(compose_predict([f"inputs={folder}", "decoder=greedy", "pretrained=cpu_scene_text"]))
    assert [(r["image"], r["text"], r["confidence"]) for r in rows] == \
           [(p.image, p.text, round(p.confidence, 4)) for p in got]


def test_every_kind_of_input_reads_the_same(shipped, folder):
    paths = [folder / f"{i}.png" for i in range(len(WORDS))]
    pil = [draw(w, "RGB") for w in WORDS]
    arrays = [np.asarray(draw(w)) for w in WORDS[:2]] + [np.asarray(draw(w, "RGB")) for w in WORDS[2:]]
    rgba = np.asarray(draw(WORDS[0], "RGB").convert("RGBA"))
    assert [p.text for p in shipped.read(paths)] == WORDS  # a list of paths, keyed by path as given
    assert [p.image for p in shipped.read([str(p) for p in paths])] == [str(p) for p in paths]
    assert [p.text for p in shipped.read(str(folder / "*.png"))] == WORDS  # a glob
    assert [p.text for p in shipped.read(pil)] == WORDS
    assert [p.text for p in shipped.read(arrays)] == WORDS
    assert [(p.text, p.image, p.error) for p in shipped.read(pil[1])] == [("station", "#0", None)]  # one image
    mixed = shipped.read([arrays[3], paths[1], rgba])
    assert [(p.image, p.text) for p in mixed] == [("#0", "2024"), (str(paths[1]), "station"), ("#2", "coffee")]


def test_images_are_batched_by_padded_width(monkeypatch):
    """Each image is padded to the next multiple of preprocess.width_multiple (4) and a batch holds one such width,
    widest first (here four widths: four batches, though batch_size=2); readings come back in input order."""
    recognizer = Recognizer.from_pretrained("cpu_scene_text", batch_size=2)
    widths, logits = [], recognizer.backend.logits
    monkeypatch.setattr(recognizer.backend, "logits", lambda x: widths.append(x.shape[-1]) or logits(x))
    words = ["station", "2024", "coffee", "hotel"]
    images = [draw(w) for w in words]
    assert [p.text for p in recognizer.read(images)] == words
    size = {w: recognizer.preprocess(np.asarray(im)).shape[-1] for w, im in zip(words, images)}
    assert [size[w] for w in ("2024", "hotel", "coffee", "station")] == [75, 77, 90, 102]
    assert widths == [104, 92, 80, 76]


def test_a_reading_does_not_depend_on_its_batch(shipped):
    """An image read alone or among wider and same-width images gives the same text and confidence (padding it to
    its batch's widest image, as training batches do, moved this confidence by more than 1e-3)."""
    alone = shipped.read(draw("hotel"))[0]
    together = shipped.read([draw("station"), draw("hotel"), draw("coffee"), draw("hotel")])
    assert [p.text for p in together] == ["station", "hotel", "coffee", "hotel"]
    for p in (together[1], together[3]):
        assert p.confidence == pytest.approx(alone.confidence, abs=1e-6)


def test_an_unreadable_image_is_reported_and_the_rest_read(shipped, folder, caplog):
    (folder / "broken.png").write_bytes(b"not an image at all")
    with caplog.at_level(logging.WARNING):
        got = shipped.read([folder, np.zeros((32, 80), np.float64), np.asarray(draw("hotel")), 42])
    by_image = {p.image: p for p in got}
    assert [p.text for p in got if p.error is None] == WORDS + ["hotel"]
    assert by_image[str(folder / "broken.png")].error.startswith("unreadable (UnidentifiedImageError: cannot identify image file")
    assert by_image["#1"].error == "bad_image (array dtype float64; expected uint8 (0-255))"
    assert by_image["#3"].error == "bad_image (int is not an image (a path, PIL image or array))"
    assert (by_image["#1"].text, by_image["#1"].confidence) == ("", 0.0)
    assert "cannot read #1 (bad_image); skipped" in caplog.text


def test_decoder_by_config_name_with_overrides():
    """`decoder="beam"` + allowed_chars: "SOl" drawn in letters reads as the number 501."""
    image = draw("SOl")
    assert Recognizer.from_pretrained().read(image)[0].text.lower().startswith("so")  # conf/predict.yaml's defaults
    for decoder in ("greedy", "beam"):
        digits = Recognizer.from_pretrained(decoder=decoder, decoder_options={"allowed_chars": "0123456789"})
        assert digits.read(image)[0].text == "501"
    from crnn_lit.transcription import BeamDecoder, Lexicon

    assert isinstance(Recognizer.from_pretrained(decoder="beam_lm").decoder, BeamDecoder)
    lexicon = Recognizer.from_pretrained(decoder="lexicon", decoder_options={"lexicon": Lexicon(["hotel", "motel"])})
    assert lexicon.read(draw("hote1")).pop().text == "hotel"


def test_exports_read_the_same_as_the_checkpoint(tmp_path, folder):
    """An .onnx and a TorchScript export (each with its sidecar) read what the checkpoint reads; a TorchScript file
    without its sidecar is refused in one line saying what is missing."""
    from crnn_lit.checkpoint import CheckpointError
    from crnn_lit.export import export

    ckpt = ROOT / "data/pretrained/cpu_scene_text.pt"
    onnx = export(str(ckpt), "onnx", tmp_path / "model.onnx")
    script = export(str(ckpt), "torchscript", tmp_path / "model_ts.pt")
    from_torch = Recognizer.from_checkpoint(ckpt).read(folder)
    for exported in (onnx, script):
        read = Recognizer.from_checkpoint(exported, threads=1).read(folder)
        assert [p.text for p in read] == [p.text for p in from_torch] == WORDS
        assert np.allclose([p.confidence for p in read], [p.confidence for p in from_torch], atol=1e-3)
    assert json.loads((tmp_path / "model.onnx.json").read_text())["preprocess"]["height"] == 32
    (tmp_path / "model_ts.pt.json").unlink()
    with pytest.raises(CheckpointError, match=r"model_ts.pt has no sidecar: expected .*model_ts.pt.json beside it"):
        Recognizer.from_checkpoint(script)


def test_missing_model_and_inputs_fail_with_one_clear_message(shipped, tmp_path):
    from crnn_lit.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="checkpoint not found"):
        Recognizer.from_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="ONNX model not found"):
        Recognizer.from_checkpoint(tmp_path / "nope.onnx")
    with pytest.raises(ConfigError, match="is not a file, a folder or a glob"):
        shipped.read(tmp_path / "missing.png")


def test_importing_the_package_does_not_load_torch():
    code = "import sys, crnn_lit, crnn_lit.config; print('torch' in sys.modules, crnn_lit.__all__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False ['Prediction', 'Recognizer']"


def test_tall_crops_are_read_turned_when_asked(shipped):
    """Sideways text (a word turned a quarter either way) reads with turn_tall, and nothing else changes."""
    words = ["station", "coffee"]
    sideways = [np.rot90(np.asarray(draw(w)), k) for w in words for k in (1, 3)]
    upright = [np.asarray(draw(w)) for w in WORDS]
    assert not {p.text for p in shipped.read(sideways)} & set(words)  # read as given: never the word
    turning = Recognizer.from_pretrained("cpu_scene_text", decoder="greedy", turn_tall=1.5)
    assert [p.text for p in turning.read(sideways)] == [w for w in words for _ in (1, 3)]
    assert turning.read(upright) == shipped.read(upright)  # wide crops are not even tried turned
    assert turning.prepare.turned == 4
    with pytest.raises(ConfigError, match=r"^turn_tall=0.5: out of range, expected a number >= 1 \(or null\)$"):
        Recognizer.from_pretrained(turn_tall=0.5)


@pytest.mark.timeout(120)
def test_reading_imports_no_hydra_module(tmp_path):
    """The Python API is plain Python: reading an image with the shipped defaults (beam + LM) loads neither Hydra
    nor OmegaConf."""
    draw("coffee").save(tmp_path / "coffee.png")
    code = ("import sys; from crnn_lit import Recognizer; "
            f"p = Recognizer.from_pretrained().read({str(tmp_path / 'coffee.png')!r})[0]; "
            "print(p.text, sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=110, check=True)
    assert out.stdout.split() == ["coffee", "[]"], out.stderr[-2000:]


def test_a_callers_hydra_state_is_left_alone(tmp_path):
    """A user's own Hydra app keeps its global state while it reads images (compose_config used to clear it)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "app.yaml").write_text("greeting: hello\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        sources = [s.path for s in GlobalHydra.instance().config_loader().get_sources()]
        read = Recognizer.from_pretrained(decoder="beam").read(draw("hotel"))[0]
        assert GlobalHydra.instance().is_initialized()
        assert [s.path for s in GlobalHydra.instance().config_loader().get_sources()] == sources
        assert str(tmp_path) in sources and compose("app").greeting == "hello"
    assert read.text == "hotel"


def test_composing_our_config_inside_a_callers_hydra_app_leaves_its_state(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from crnn_lit.config import compose_config

    (tmp_path / "app.yaml").write_text("greeting: hello\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        assert compose_config(["decoder=greedy"], config_name="predict").decoder._partial_
        assert compose("app").greeting == "hello"  # the caller's search path, not ours
    assert not GlobalHydra.instance().is_initialized()  # and its context closes as it would have
    assert compose_config([], config_name="export").opset == 17  # with no caller: as before


@pytest.mark.parametrize("tool", ["predict", "evaluate"])
def test_the_command_lines_read_with_the_recognizers_defaults(tool):
    """predict and evaluate compose Recognizer's defaults (model, batch and chunk size, turn_tall, the decoder's
    settings) from Python, not a second copy: what the command line reads with is what Python reads with."""
    import inspect

    from hydra.utils import instantiate

    from crnn_lit.config import compose_config
    from crnn_lit.transcription.presets import decoder_settings

    cfg = compose_config(["inputs=x.png"] if tool == "predict" else [], config_name=tool)
    defaults = {k: p.default for k, p in inspect.signature(Recognizer.from_pretrained).parameters.items()}
    assert (cfg.pretrained, cfg.batch_size, cfg.chunk_size, cfg.turn_tall) == \
        (defaults["name"], defaults["batch_size"], defaults["chunk_size"], defaults["turn_tall"])
    assert defaults["decoder"] == "model" and type(instantiate(cfg.decoder)).__name__ == "ModelDecoding"
    beam_lm = compose_config(["inputs=x.png", "decoder=beam_lm"], config_name="predict").decoder
    assert {k: v for k, v in beam_lm.items() if not k.startswith("_")} == decoder_settings("beam_lm")
    override = compose_config(["inputs=x.png", "batch_size=8", "decoder=beam", "decoder.beam_width=3"],
                              config_name="predict")
    assert (override.batch_size, override.decoder.beam_width, override.decoder.lm) == (8, 3, None)


def test_thread_policy_reads_with_the_cores_others_leave_free(monkeypatch):
    """threads=None: one thread until a window is measured, then the cores other processes leave free, within
    [1, torch's count]; a number is used as given; the caller's torch count is restored after each pass."""
    import torch

    from crnn_lit.reading import threads as policy

    monkeypatch.setattr(policy, "available_cores", lambda: 2)
    others = iter([0.05, 0.9, 0.2, 1.6])
    monkeypatch.setattr(policy.OtherLoad, "cores", lambda self: next(others))
    auto = policy.ThreadPolicy(window=0.0)
    assert auto.threads(2) == 1  # nothing measured yet
    assert [auto.threads(2) for _ in range(4)] == [2, 1, 2, 1]  # idle, one core busy, light noise, both busy
    assert policy.ThreadPolicy(3).threads(2) == 3
    with pytest.raises(ConfigError, match=r"^threads=0: out of range, expected an integer >= 1 \(or null\)$"):
        Recognizer.from_pretrained(threads=0)  # checked before the model loads
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with policy.ThreadPolicy(1).applied() as n:
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_other_load_sees_a_busy_process():
    """A competing busy loop counts as (nearly) one busy core."""
    from crnn_lit.reading.threads import OtherLoad

    load = OtherLoad()
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        load.cores()
        time.sleep(0.5)
        busy = load.cores()
    finally:
        loop.kill()
        loop.wait()
    assert busy >= 0.6


def test_one_prediction_per_input_in_order_repeats_included(shipped, folder):
    """Each input gives one Prediction, in order, even when the same image is given twice; `image` is the path as
    given (a file), <folder>/<file> (a folder), or #<i> (in memory)."""
    a, b = str(folder / "1.png"), str(folder / "3.png")
    got = shipped.read([a, a, b, draw("hotel"), a])
    assert [(p.image, p.text) for p in got] == [(a, "station"), (a, "station"), (b, "2024"), ("#3", "hotel"),
                                                (a, "station")]
    assert [p.image for p in shipped.read(a)] == [a]
    chunked = list(shipped.iter_read([a, b, a], chunk_size=1))
    assert [(p.image, p.text) for p in chunked] == [(a, "station"), (b, "2024"), (a, "station")]


def test_a_per_image_lexicon_finds_an_image_by_the_end_of_its_path():
    from crnn_lit.transcription.lexicon import Lexicon

    lexicon = Lexicon(per_image={"img/1.png": ["hotel"], "2.png": ["motel"]})
    assert lexicon.lists_for(["data/svt/img/1.png", "/abs/img/2.png", "img/1.png", "3.png"]) == \
           [["hotel"], ["motel"], ["hotel"], None]


def test_predict_refuses_what_it_cannot_do_before_reading(folder, tmp_path, compose_predict, monkeypatch):
    """An output that cannot be written, or no image at all: one ConfigError, before the model is even loaded; a run
    in which nothing could be read: an error too; predict says where it wrote."""
    from crnn_lit.config import ConfigError
    from crnn_lit.predict import predict

    def no_model(cfg):
        raise AssertionError("the model was loaded before the inputs and output were checked")

    with monkeypatch.context() as patched:
        patched.setattr(Recognizer, "from_config", no_model)
        (tmp_path / "a_file").write_text("x")
        for output, message in [(tmp_path, "is a folder"), (tmp_path / "a_file" / "out.csv", "cannot be written")]:
            with pytest.raises(ConfigError, match=message):
                predict(compose_predict([f"inputs={folder}", f"output={output}"]))
        (tmp_path / "empty").mkdir()
        with pytest.raises(ConfigError, match="no image file in it"):
            predict(compose_predict([f"inputs={tmp_path / 'empty'}"]))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="no image could be read: all 1 unreadable"):
        predict(compose_predict([f"inputs={tmp_path / 'bad'}", "decoder=greedy"]))


def test_predict_says_where_it_wrote(folder, tmp_path, compose_predict, capsys):
    from crnn_lit.predict import predict

    out = tmp_path / "sub" / "out.csv"
    predict(compose_predict([f"inputs={folder}", f"output={out}", "decoder=greedy"]))
    assert f"4 read, 0 unreadable; written to {out}" in capsys.readouterr().err
    assert out.read_text().count("\n") == 5


def test_device_cpu_reads_and_cuda_without_a_gpu_is_one_line(shipped, folder, tmp_path):
    """device=cpu reads as the default does; device=cuda on a machine without CUDA (torch or onnxruntime) is one
    CheckpointError line, and the same from predict's command line (exit 2)."""
    import torch

    from crnn_lit.checkpoint import CheckpointError
    from crnn_lit.export import export

    on_cpu = Recognizer.from_pretrained("cpu_scene_text", decoder="greedy", device="cpu").read(folder)
    assert [(p.text, p.confidence) for p in on_cpu] == [(p.text, p.confidence) for p in shipped.read(folder)]
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    onnx = export(str(ROOT / "data/pretrained/cpu_scene_text.pt"), "onnx", tmp_path / "model.onnx")
    for model, message in (("cpu_scene_text.pt", "torch sees no CUDA GPU here"),
                           (onnx, "onnxruntime has no CUDA provider here")):
        with pytest.raises(CheckpointError, match=message) as err:
            Recognizer.from_checkpoint(ROOT / "data/pretrained" / model if isinstance(model, str) else model,
                                       device="cuda", threads=1)
        assert "\n" not in str(err.value) and "device=cpu" in str(err.value)
    for name in ("cpu_scene_text", "ppocr_v6_small"):  # torch, onnxruntime (the default is read from its .onnx)
        with pytest.raises(CheckpointError, match="is not a device"):
            Recognizer.from_pretrained(name, device="gpu0")
    proc = subprocess.run([sys.executable, "-m", "crnn_lit.predict", f"inputs={folder}", "device=cuda",
                           f"hydra.run.dir={tmp_path / 'run'}"], check=False, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("crnn_lit.predict: error: device=cuda but onnxruntime has no CUDA provider here")


def test_each_character_has_a_confidence_and_a_position(shipped):
    """Per character: a confidence in (0, 1] and its x in the input image, near where it was drawn; a beam's
    alternatives with their probabilities, the reading first; greedy has none."""
    font = ImageFont.truetype(str(ROOT / "data/fonts/dejavu/DejaVuSans-Bold.ttf"), 40)
    word = "station"
    image = draw(word)
    (p,) = shipped.read(image)
    assert p.text == word and "".join(c.char for c in p.chars) == word and p.alternatives == ()
    drawn = [10 + (font.getlength(word[:i]) + font.getlength(word[:i + 1])) / 2 for i in range(len(word))]
    for c, x in zip(p.chars, drawn):
        assert 0 < c.confidence <= 1 and 0 <= c.left < c.x < c.right <= image.width
    # where CTC spikes: within 10 px of each glyph's centre (a glyph is 15-27 px wide here), except the first
    # character, which this model emits at the first frame (Char's docstring)
    assert all(abs(c.x - x) < 10 for c, x in zip(p.chars[1:], drawn[1:])), list(zip(p.chars, drawn))
    assert [c.x for c in p.chars] == sorted(c.x for c in p.chars) and p.chars[0].x < drawn[0]
    wide = Image.new("L", (image.width * 2, image.height), 235)
    wide.paste(image.resize((image.width * 2, image.height)), (0, 0))  # stretched: positions follow the pixels
    (stretched,) = shipped.read(wide)
    if stretched.text == word:
        assert all(abs(a.x * 2 - b.x) < 12 for a, b in zip(p.chars, stretched.chars))
    beam = Recognizer.from_pretrained("cpu_scene_text", threads=1)  # beam + LM, the default
    (read,) = beam.read(image)
    assert read.text == word and read.alternatives[0] == (read.text, read.confidence)
    assert 1 < len(read.alternatives) <= 10 and all(0 <= q <= 1 for _, q in read.alternatives)
    assert len({t for t, _ in read.alternatives}) == len(read.alternatives)


def test_a_model_reads_with_the_decoding_recorded_with_it(tmp_path):
    """decoder="model" (the default): the decoder and settings a weights file records (checkpoint weights
    --reading), else beam_lm at the presets' weights; an explicit name still means the preset; a reading naming
    no decoder is refused in one line. The export sidecar carries it."""
    from crnn_lit.checkpoint import CheckpointError, load_model, model_record
    from crnn_lit.checkpoint import main as checkpoint_main
    from crnn_lit.export import sidecar
    from crnn_lit.transcription import BeamDecoder, GreedyDecoder

    shipped = ROOT / "data/pretrained/cpu_scene_text.pt"
    plain = Recognizer.from_checkpoint(shipped)
    assert isinstance(plain.decoder, BeamDecoder) and plain.decoder.fusion.alpha == 0.7
    tuned = tmp_path / "tuned.pt"
    checkpoint_main(["weights", str(shipped), str(tuned), "--reading",
                     '{"decoder": "beam_lm", "lm_weight": 0.25, "length_bonus": 0.5}'])
    assert load_model(tuned).reading == {"decoder": "beam_lm", "lm_weight": 0.25, "length_bonus": 0.5}
    reader = Recognizer.from_checkpoint(tuned)
    assert (reader.decoder.fusion.alpha, reader.decoder.fusion.beta) == (0.25, 0.5)
    assert Recognizer.from_checkpoint(tuned, "beam_lm").decoder.fusion.alpha == 0.7
    assert Recognizer.from_checkpoint(tuned, decoder_options={"lm_weight": 0.1}).decoder.fusion.alpha == 0.1
    greedy = tmp_path / "greedy.pt"
    checkpoint_main(["weights", str(tuned), str(greedy), "--reading", '{"decoder": "greedy"}'])
    assert isinstance(Recognizer.from_checkpoint(greedy).decoder, GreedyDecoder)
    with pytest.raises(SystemExit, match="names one of the decoders"):
        checkpoint_main(["weights", str(tuned), str(tmp_path / "x.pt"), "--reading", '{"decoder": "best"}'])
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(CheckpointError, match="names one of the decoders"):
        model_record(plain.charset, {}, reading={"lm_weight": 1})
    assert sidecar(load_model(tuned), "onnx")["reading"] == load_model(tuned).reading
    assert sidecar(load_model(shipped), "onnx")["reading"] == {"decoder": "beam_lm"}
