"""Exported models (ONNX, TorchScript) reproduce the torch logits at any width, and predict reads them the same."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from crnn_lit.checkpoint import load_model
from crnn_lit.export import export
from crnn_lit.transcription import GreedyDecoder


@pytest.mark.parametrize("transform", ["none", "tps"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_torch_at_any_width(request, tmp_path, fmt, transform):
    """With a TPS stage too: its grid is built for each input width inside the exported graph."""
    ckpt = request.getfixturevalue("tiny_ckpt" if transform == "none" else "tiny_tps_ckpt")
    out = export(str(ckpt), fmt, tmp_path / f"model.{fmt}")
    meta = json.loads((tmp_path / f"model.{fmt}.json").read_text())
    assert meta["charset"]["chars"] == "0123456789abcdefghijklmnopqrstuvwxyz" and meta["blank_index"] == 0
    assert meta["preprocess"]["height"] == 32 and meta["output_length"]["stride"] == 4
    loaded = load_model(ckpt)
    if fmt == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        run = lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    else:
        scripted = torch.jit.load(str(out))
        run = lambda x: scripted(x)
    decoder = GreedyDecoder(loaded.charset)
    for width, batch in ((32, 1), (100, 3), (400, 2)):
        x = torch.randn(batch, 1, 32, width)
        with torch.no_grad():
            expected = loaded.model(x)
        got = run(x)
        assert got.shape == expected.shape == (width // 4 + 1, batch, 37)
        assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())
        lengths = torch.full((batch,), width // 4 + 1)
        assert [p.text for p in decoder(got.log_softmax(2), lengths)] == \
               [p.text for p in decoder(expected.log_softmax(2), lengths)]


@pytest.mark.parametrize("transform", ["none", "tps"])
def test_predict_same_text_from_onnx_and_torch_and_survives_a_corrupt_image(request, tmp_path, compose_predict,
                                                                              transform):
    ckpt = request.getfixturevalue("tiny_ckpt" if transform == "none" else "tiny_tps_ckpt")
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, w in enumerate((40, 90, 150)):
        Image.fromarray(rng.integers(0, 255, (32, w), dtype=np.uint8)).save(folder / f"img{i}.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    onnx = export(str(ckpt), "onnx", tmp_path / "model.onnx")
    from crnn_lit.predict import predict

    torch_rows = predict(compose_predict([f"ckpt={ckpt}", f"inputs={folder}", f"output={tmp_path / 'p.json'}"]))
    onnx_rows = predict(compose_predict([f"ckpt={onnx}", f"inputs={folder}"]))
    assert [r["image"] for r in torch_rows] == [str(folder / n) for n in ("img0.png", "img1.png", "img2.png",
                                                                          "broken.png")]
    assert [r.get("text") for r in torch_rows] == [r.get("text") for r in onnx_rows]
    assert "unreadable" in torch_rows[-1]["error"]
    written = json.loads((tmp_path / "p.json").read_text())
    assert len(written["predictions"]) == 3 and written["unreadable"][0]["image"] == str(folder / "broken.png")


def test_fine_tuning_with_another_charset_rebuilds_the_head_by_character(tiny_ckpt):
    from conftest import TINY_MODEL
    from crnn_lit.charset import Charset
    from crnn_lit.checkpoint import CheckpointError, init_from
    from crnn_lit.model import build_model

    source = load_model(tiny_ckpt).model
    new = Charset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!")
    model = build_model(TINY_MODEL["backbone"], TINY_MODEL["rnn"], new.num_classes, 1)
    fresh_head = model.head.weight.clone()
    assert init_from(model, new, tiny_ckpt).reinitialized == ["head.weight", "head.bias"]
    old = source.head.weight  # classes: blank, 0-9, a-z
    assert torch.equal(model.head.weight[:37], old)  # blank, digits and letters: the same rows
    assert torch.equal(model.head.weight[37:63], old[11:37])  # A-Z start from a-z (the other case)
    assert torch.equal(model.head.weight[63], fresh_head[63])  # "!" was never there: fresh
    assert torch.equal(model.head.bias[37:63], source.head.bias[11:37])
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items() if not k.startswith("head"))
    other = build_model({**TINY_MODEL["backbone"], "channels": [8, 16, 32, 32, 64, 64, 32]}, TINY_MODEL["rnn"], 37, 1)
    with pytest.raises(CheckpointError, match="architecture differs"):
        init_from(other, load_model(tiny_ckpt).charset, tiny_ckpt)


def test_predict_and_evaluate_default_to_the_shipped_model(compose_predict, compose_evaluate, tmp_path):
    """No ckpt given: the shipped real-text model (data/pretrained/<pretrained>.pt) reads clean printed words."""
    from PIL import ImageDraw, ImageFont

    from crnn_lit.config import resolve_ckpt
    from crnn_lit.predict import predict

    folder = tmp_path / "words"
    folder.mkdir()
    font = ImageFont.truetype(str(ROOT / "data/fonts/dejavu/DejaVuSans-Bold.ttf"), 40)
    words = ["coffee", "station", "hotel", "2024"]
    for i, word in enumerate(words):
        image = Image.new("L", (int(font.getlength(word)) + 20, 56), 235)
        ImageDraw.Draw(image).text((10, 4), word, font=font, fill=20)
        image.save(folder / f"{i}.png")
    cfg = compose_predict([f"inputs={folder}"])
    shipped = ROOT / "data" / "pretrained" / f"{cfg.pretrained}.onnx"  # read by onnxruntime; its .pt for weights
    assert resolve_ckpt(cfg) == str(shipped) and shipped.is_file()
    assert resolve_ckpt(compose_evaluate([])) == str(shipped)  # evaluate's default is the same model
    assert resolve_ckpt(compose_predict([f"inputs={folder}", "ckpt=x/y.pt"])) == "x/y.pt"
    assert [row["text"] for row in predict(cfg)] == words


def test_allowed_chars_read_a_number(compose_predict, tmp_path):
    """`decoder.allowed_chars=0123456789`: "SOl" drawn in letters reads as the number 501 (as letters without)."""
    from PIL import ImageDraw, ImageFont

    from crnn_lit.predict import predict

    font = ImageFont.truetype(str(ROOT / "data/fonts/dejavu/DejaVuSans-Bold.ttf"), 40)
    image = Image.new("L", (int(font.getlength("SOl")) + 20, 56), 235)
    ImageDraw.Draw(image).text((10, 4), "SOl", font=font, fill=20)
    image.save(tmp_path / "sol.png")
    (free,) = [r["text"] for r in predict(compose_predict([f"inputs={tmp_path}"]))]
    assert free.lower().startswith("so")  # the default model reads case: SOl, SOI
    for decoder in ("model", "greedy", "beam"):
        cfg = compose_predict([f"inputs={tmp_path}", f"decoder={decoder}", "decoder.allowed_chars=0123456789"])
        assert [r["text"] for r in predict(cfg)] == ["501"]


def test_predict_takes_a_list_of_inputs(compose_predict, tmp_path):
    """`inputs=[a.png,folder]` on the Hydra command line: every image as often as it is given, named by its path, in
    the order given."""
    from crnn_lit.predict import predict

    folder = tmp_path / "more"
    folder.mkdir()
    for name, where in (("a.png", tmp_path), ("b.png", folder), ("c.png", folder)):
        Image.fromarray(np.full((32, 60), 200, np.uint8)).save(where / name)
    a = tmp_path / "a.png"
    rows = predict(compose_predict([f"inputs=[{a},{folder},{folder / 'b.png'}]"]))
    assert [r["image"] for r in rows] == [str(a), str(folder / "b.png"), str(folder / "c.png"), str(folder / "b.png")]
    assert all(isinstance(r["text"], str) for r in rows)


def test_the_frame_count_comes_from_the_model(tiny_ckpt):
    """Batching lengths and the export sidecar ask the model for T(width), not a module-level formula."""
    from crnn_lit.export import sidecar
    from crnn_lit.reading.inference import TorchBackend, width_batches

    loaded = load_model(tiny_ckpt)
    loaded.model.backbone.width_stride = 8  # as a backbone with another down-sampling plan would say
    assert sidecar(loaded, "onnx")["output_length"] == {"formula": "T = floor(W / stride) + offset", "stride": 8,
                                                         "offset": 1}
    backend = TorchBackend(loaded.model)
    (batch,) = width_batches([torch.zeros(1, 32, 80)], 4, ["a"], output_length=backend.output_length,
                              width_multiple=4)
    assert batch.input_lengths.tolist() == [80 // 8 + 1]


@pytest.mark.timeout(120)
def test_a_client_of_the_sidecar_alone_reads_what_predict_reads(tmp_path):
    """tests/onnx_client.py follows the exported model's .json sidecar step by step (numpy, OpenCV, onnxruntime; crnn_lit
    made unimportable) and reads 150 real crops exactly as predict does with the shipped model, torch or ONNX."""
    import subprocess
    import sys

    from conftest import SHARED_DATA
    from crnn_lit import Recognizer

    images = sorted((SHARED_DATA / "real_train/iiit5k/images").glob("*.png"))[:150]
    if len(images) < 150:
        pytest.skip("needs ../shared/data/real_train/iiit5k")
    ckpt = ROOT / "data/pretrained/cpu_scene_text.pt"
    onnx = export(str(ckpt), "onnx", tmp_path / "model.onnx")
    meta = json.loads((tmp_path / "model.onnx.json").read_text())
    assert meta["sidecar_version"] == 2 and "INTER_AREA when shrinking" in meta["preprocess"]["resize"]
    run = ("import runpy, sys; sys.modules['crnn_lit'] = None; sys.argv = sys.argv[1:]; "
           "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", run, str(ROOT / "tests/onnx_client.py"), str(onnx),
                           *map(str, images)], capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-1500:]
    client = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["image"] for row in client] == [str(p) for p in images]
    for model in (ckpt, onnx):
        read = Recognizer.from_checkpoint(model, decoder="greedy").read([str(p) for p in images])
        assert [row["text"] for row in client] == [p.text for p in read]
        assert [row["confidence"] for row in client] == pytest.approx([p.confidence for p in read], abs=1e-4)


@pytest.mark.timeout(180)
def test_an_exported_model_reads_with_its_default_decoding(tmp_path):
    """The default reading travels with an export: the sidecar names the model's decoding (beam + LM for the
    shipped model), and Recognizer on the .onnx alone (no checkpoint) reads 200 real crops as the checkpoint's
    default reading does."""
    from conftest import SHARED_DATA
    from crnn_lit import Recognizer

    images = [str(p) for p in sorted((SHARED_DATA / "real_train/ic15/images").glob("*.png"))[:200]]
    if len(images) < 200:
        pytest.skip("needs ../shared/data/real_train/ic15")
    ckpt = ROOT / "data/pretrained/cpu_scene_text.pt"
    onnx = export(str(ckpt), "onnx", tmp_path / "model.onnx")
    assert json.loads((tmp_path / "model.onnx.json").read_text())["reading"] == {"decoder": "beam_lm"}
    exported, original = Recognizer.from_checkpoint(onnx), Recognizer.from_checkpoint(ckpt)
    assert exported.decoder.fusion is not None and exported.decoder.fusion.alpha == original.decoder.fusion.alpha
    same = sum(a.text == b.text for a, b in zip(exported.read(images), original.read(images), strict=True))
    assert same >= 198  # onnxruntime's and torch's float paths may tip a near-tie in a beam
