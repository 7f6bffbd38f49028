"""PP-OCRv6's parts and their exact import: a graph in PaddleOCR's layout (tests/ppocr_graph.py) imports into the
network it was written from, and reads as onnxruntime reads it; the slow test does the same with the released
weights, fetched as a user would (`pip download rapidocr`)."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from crnn_lit.charset import Charset
from crnn_lit.checkpoint import CheckpointError, import_checkpoint, load_model
from crnn_lit.model.build import BACKBONES, build_model, ppocr_v6_small, ppocr_v6_tiny
from crnn_lit.transcription.greedy import GreedyDecoder

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

DICT = "abcdefghij"  # the graphs' dictionary; the head predicts blank + these + the space PP-OCR appends
SMALL = {"_target_": "crnn_lit.model.pplcnet.PPLCNetV4", "stem": "hg", "stem_channels": [8, 16], "height": 48,
         "blocks": [[16, 1, True], [32, 2, False], [32, 1, True], [48, 2, False], [48, 1, False]]}
TINY = {**SMALL, "stem": "conv", "blocks": [[16, 1, True], [24, 2, False], [24, 1, False], [24, 2, True]]}
NECKS = {"svtr": {"_target_": "crnn_lit.model.neck.SVTRNeck", "dims": 16, "depth": 2, "heads": 2, "mlp_ratio": 2.0,
                  "kernel": 7},
         "conv_mixer": {"_target_": "crnn_lit.model.neck.ConvMixer", "kernel": 5, "project_to": 12}}


def _random_network(backbone: dict, neck: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(backbone, NECKS[neck], len(DICT) + 2, 3)
    with torch.no_grad():  # BN statistics and LayerNorm affines away from their identity defaults
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.5), m.running_var.uniform_(0.5, 2), m.weight.uniform_(0.5, 2)
                m.bias.normal_(0, 0.5)
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 2), m.bias.normal_(0, 0.5)
        model.head.weight.mul_(8)  # confident frames, so readings are not ties
    return model.eval()


def _greedy(log_probs: torch.Tensor, chars: str) -> list[str]:
    decoder = GreedyDecoder(Charset(chars))
    lengths = torch.full((log_probs.shape[1],), log_probs.shape[0])
    return [r.text for r in decoder.decode(log_probs, lengths)]


@pytest.mark.parametrize(("backbone", "neck", "unfold"), [(SMALL, "svtr", False), (TINY, "conv_mixer", True)])
def test_a_graph_in_paddles_layout_imports_exactly(tmp_path, backbone, neck, unfold):
    from ppocr_graph import write_graph

    source = _random_network(backbone, neck)
    write_graph(source, tmp_path / "rec.onnx", DICT, unfold_stem_bn=unfold)
    out = import_checkpoint(tmp_path / "rec.onnx", tmp_path / "rec.pt", "ppocr")
    loaded = load_model(out)
    assert loaded.charset.chars == DICT + " "  # the space appended as the last class
    assert loaded.config["backbone"]["blocks"] == backbone["blocks"] and loaded.config["rnn"] == NECKS[neck]
    assert loaded.config["channel_order"] == "bgr" and loaded.config["min_width"] == 320
    x = torch.rand(3, 3, 48, 67) * 2 - 1  # 67: not a multiple of 8, T = floor((67 + 3) / 8) = 8
    with torch.no_grad():
        ours, theirs = loaded.model(x), source(x)
    assert ours.shape[0] == loaded.model.output_length(67) == 8
    assert (ours - theirs).abs().max() < 1e-4
    session = ort.InferenceSession(str(tmp_path / "rec.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"x": x.numpy()})
    assert np.abs(ours.softmax(-1).permute(1, 0, 2).numpy() - probs).max() < 1e-4
    readings = _greedy(ours.log_softmax(-1), loaded.charset.chars)
    assert readings == _greedy(torch.from_numpy(probs).permute(1, 0, 2).log(), loaded.charset.chars)
    assert any(readings)


def test_keeping_a_charsets_rows_slices_the_head(tmp_path):
    from ppocr_graph import write_graph

    source = _random_network(TINY, "conv_mixer")
    write_graph(source, tmp_path / "rec.onnx", DICT)
    full = load_model(import_checkpoint(tmp_path / "rec.onnx", tmp_path / "full.pt", "ppocr")).model
    kept = load_model(import_checkpoint(tmp_path / "rec.onnx", tmp_path / "kept.pt", "ppocr", "jab ")).model
    x = torch.rand(2, 3, 48, 40) * 2 - 1
    with torch.no_grad():
        assert torch.equal(kept(x), full(x)[:, :, [0, 10, 1, 2, 11]])  # blank, j, a, b, space
    with pytest.raises(CheckpointError, match="lacks 1 of the characters to keep: 'z'"):
        import_checkpoint(tmp_path / "rec.onnx", tmp_path / "bad.pt", "ppocr", "az")


def test_what_does_not_map_is_refused_in_one_line(tmp_path):
    from ppocr_graph import write_graph

    write_graph(_random_network(SMALL, "svtr"), tmp_path / "rec.onnx", DICT)
    graph = onnx.load(str(tmp_path / "rec.onnx"))
    graph.graph.node.append(onnx.helper.make_node("LSTM", ["x"], ["y"]))
    onnx.save(graph, str(tmp_path / "lstm.onnx"))
    with pytest.raises(CheckpointError, match=r"ops no PP-OCRv6 recognizer has \(LSTM\)") as err:
        import_checkpoint(tmp_path / "lstm.onnx", tmp_path / "x.pt", "ppocr")
    assert "\n" not in str(err.value)
    graph = onnx.load(str(tmp_path / "rec.onnx"))
    del graph.metadata_props[:]  # no dictionary, and no inference.yml beside it
    onnx.save(graph, str(tmp_path / "nodict.onnx"))
    with pytest.raises(CheckpointError, match="no dictionary"):
        import_checkpoint(tmp_path / "nodict.onnx", tmp_path / "x.pt", "ppocr")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="cannot read .* as an ONNX model"):
        import_checkpoint(tmp_path / "junk.onnx", tmp_path / "x.pt", "ppocr")


def test_the_named_networks_are_the_released_layouts():
    small, tiny = ppocr_v6_small(96), ppocr_v6_tiny(96)
    assert 3.0e6 < sum(p.numel() for p in small.parameters()) < 3.03e6  # PP-OCRv6 small with 96 classes
    assert 0.54e6 < sum(p.numel() for p in tiny.parameters()) < 0.56e6
    for model in (small, tiny):
        assert model.backbone.out_channels == (384 if model is small else 160)
        assert [model.output_length(w) for w in (320, 321, 325, 7)] == [40, 40, 41, 1]
        with torch.no_grad():
            assert [model.eval()(torch.zeros(1, 3, 48, w)).shape[0] for w in (320, 325, 7)] == [40, 41, 1]
    assert len(BACKBONES["pplcnet_v4_small"]["blocks"]) == 13 and len(BACKBONES["pplcnet_v4_tiny"]["blocks"]) == 9


def test_the_necks_batch_norm_stays_frozen_in_training():
    """Frozen whatever the flags say: Lightning restores each module's `training` flag by assignment after a
    validation (a fresh module's flag is True), which bypassed an override of train()."""
    model = ppocr_v6_small(5).train()
    images = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        reading = model.eval()(images)
    model.train()
    for bn in (model.rnn.shortcut[1], model.rnn.reduce[1], model.rnn.local[1]):
        bn.training = True  # what Lightning's _ModuleMode.restore may do
    before = [b.clone() for b in model.rnn.shortcut[1].buffers()]
    with torch.no_grad():
        trained = model(images)
    assert all(torch.equal(a, b) for a, b in zip(before, model.rnn.shortcut[1].buffers()))
    assert torch.allclose(trained, reading, atol=1e-5)  # no dropout: training normalises as reading does
    assert model.backbone.training and model.rnn.blocks.training


def test_batch_norm_backbone_for_training_from_scratch():
    bb = build_model({**BACKBONES["pplcnet_v4_tiny"], "batch_norm": True, "height": 32}, NECKS["svtr"], 5, 1).backbone
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bb.modules()) == 2 + 9 * 3
    assert not any(m.bias is not None for m in bb.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1)
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model({**BACKBONES["pplcnet_v4_tiny"], "height": 40}, NECKS["svtr"], 5, 1)


@pytest.mark.slow
def test_the_released_small_model_reads_as_onnxruntime(tmp_path):
    """`pip download rapidocr==3.10.0` as users would, import PP-OCRv6 small with the printable + space head, and
    compare with onnxruntime on the released graph over real crops (PP-OCR's own preprocessing)."""
    import cv2

    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "rapidocr==3.10.0", "-d",
                    str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("rapidocr-3.10.0-*.whl")
    with zipfile.ZipFile(wheel) as z:
        z.extract("rapidocr/models/PP-OCRv6_rec_small.onnx", tmp_path)
    graph = tmp_path / "rapidocr/models/PP-OCRv6_rec_small.onnx"
    loaded = load_model(import_checkpoint(graph, tmp_path / "small.pt", "ppocr", "printable95"))
    chars = {p.key: p.value for p in onnx.load(str(graph)).metadata_props}["character"].split("\n") + [" "]
    rows = [0] + [chars.index(c) + 1 for c in loaded.charset.chars]
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    root = SHARED_DATA / "real_train" / "iiit5k"
    if not root.is_dir():
        pytest.skip(f"no shared crops at {root}")
    worst, equal = 0.0, 0
    lines = (root / "labels.tsv").read_text(encoding="utf-8").splitlines()[:20]
    for line in lines:
        image = cv2.imread(str(root / line.split("\t")[0]))  # BGR, as PP-OCR reads
        h, w = image.shape[:2]
        width = int(np.ceil(48 * w / h))
        x = np.zeros((1, 3, 48, max(320, width)), np.float32)
        x[0, :, :, :width] = cv2.resize(image, (width, 48)).transpose(2, 0, 1) / 127.5 - 1
        (probs,) = session.run(None, {"x": x})
        theirs = torch.from_numpy(probs[0][:, rows]).double()
        theirs /= theirs.sum(1, keepdim=True)  # the softmax over the kept rows
        with torch.no_grad():
            ours = loaded.model(torch.from_numpy(x))[:, 0].double().softmax(-1)
        worst = max(worst, float((ours - theirs).abs().max()))
        equal += bool(torch.equal(ours.argmax(1), theirs.argmax(1)))
    assert worst < 5e-4 and equal == len(lines)


def _saved(tmp_path, model, chars: str):
    from crnn_lit.checkpoint import save_weights
    from crnn_lit.preprocess import Preprocess

    config = {"transform": {"_target_": "crnn_lit.model.transform.NoTransform"}, "backbone": SMALL,
              "rnn": NECKS["svtr"], **Preprocess.from_conf("ppocr").record()}
    return save_weights(tmp_path / "small.pt", model, Charset(chars), config)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_torch_at_any_width(tmp_path, fmt):
    from crnn_lit.export import export

    ckpt = _saved(tmp_path, _random_network(SMALL, "svtr"), DICT + " ")
    out = export(str(ckpt), fmt, tmp_path / f"model.{fmt}")
    loaded = load_model(ckpt)
    if fmt == "onnx":
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        run = lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    else:
        run = torch.jit.load(str(out))
    for width, batch in ((320, 1), (333, 3), (64, 2)):
        x = torch.rand(batch, 3, 48, width) * 2 - 1
        with torch.no_grad():
            expected, got = loaded.model(x), run(x)
        assert got.shape == expected.shape == ((width + 3) // 8, batch, len(DICT) + 2)
        assert (got - expected).abs().max() < 1e-4


def test_a_client_of_the_sidecar_alone_reads_a_ppocr_export_as_predict_does(tmp_path):
    """tests/onnx_client.py (no crnn_lit) follows the sidecar's BGR order, zero padding to 320 and T = floor((W + 3)
    / 8), and reads what Recognizer reads from the checkpoint and from the export."""
    import json

    import cv2

    from conftest import ROOT
    from crnn_lit import Recognizer
    from crnn_lit.export import export

    ckpt = _saved(tmp_path, _random_network(SMALL, "svtr", seed=3), DICT + " ")
    onnx_path = export(str(ckpt), "onnx", tmp_path / "model.onnx")
    assert json.loads((tmp_path / "model.onnx.json").read_text())["output_length"]["pad"] == 3
    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(30, 40), (20, 300), (48, 333), (12, 90), (40, 17)]):
        images.append(str(tmp_path / f"{i}.png"))
        cv2.imwrite(images[-1], rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    run = ("import runpy, sys; sys.modules['crnn_lit'] = None; sys.argv = sys.argv[1:]; "
           "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", run, str(ROOT / "tests/onnx_client.py"), str(onnx_path), *images],
                          capture_output=True, text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-1500:]
    client = [json.loads(line) for line in proc.stdout.splitlines()]
    for model in (ckpt, onnx_path):
        read = Recognizer.from_checkpoint(model, decoder="greedy").read(images)
        assert [row["text"] for row in client] == [p.text for p in read]
        assert [row["confidence"] for row in client] == pytest.approx([p.confidence for p in read], abs=1e-4)
    assert any(row["text"] for row in client)


def test_the_pp_ocr_licence_notice_and_attribution_travel_with_the_models():
    """Apache-2.0 section 4: the licence text (the canonical file, byte for byte), a notice of what was modified and
    the attribution, beside the shipped models and in the wheel's package data."""
    import hashlib

    from conftest import ROOT

    pretrained = ROOT / "data" / "pretrained"
    assert hashlib.md5((pretrained / "LICENSE-PP-OCR").read_bytes()).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"
    notice = (pretrained / "NOTICE-PP-OCR").read_text(encoding="utf-8")
    for needed in ("data/pretrained/ppocr_*.pt", "Apache License, Version 2.0", "Baidu", "Modifications",
                   "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"):
        assert needed in notice
    assets = (ROOT / "pyproject.toml").read_text().split('"crnn_lit.assets" = [', 1)[1].split("]", 1)[0]
    assert '"pretrained/LICENSE-*"' in assets and '"pretrained/NOTICE-*"' in assets  # (tomllib: Python 3.11+)
