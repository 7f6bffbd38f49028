"""The input spec: one Preprocess, configured by conf/preprocess, recorded with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import PREPROCESS, compose_train
from crnn_lit.config import model_config
from crnn_lit.preprocess import Preprocess


def test_conf_options_share_the_default_values():
    assert PREPROCESS.record() == {"height": 32, "channels": 1, "min_width": 16, "max_width": 400,
                                   "width_policy": "bucketed", "fixed_width": 100, "width_multiple": 4,
                                   "narrow": "stretch", "channel_order": "rgb"}
    assert Preprocess.from_conf("easyocr") == PREPROCESS.replace(height=64)
    assert Preprocess.from_conf("dtrb") == PREPROCESS.replace(width_policy="fixed")
    assert Preprocess.from_conf("dtrb", height=48).height == 48


def test_bad_specs_fail_at_construction_with_the_key_to_fix():
    with pytest.raises(FileNotFoundError, match="known: default, dtrb, easyocr, ppocr"):
        Preprocess.from_conf("nope")
    with pytest.raises(ValueError, match="preprocess.channels must be 1 or 3"):
        PREPROCESS.replace(channels=2)
    with pytest.raises(ValueError, match="preprocess.min_width=500 is above preprocess.max_width=400"):
        PREPROCESS.replace(min_width=500)
    with pytest.raises(ValueError, match="preprocess.width_policy"):
        PREPROCESS.replace(width_policy="stretch")
    with pytest.raises(ValueError, match=r"preprocess.width_multiple=0: out of range, expected an integer >= 1$"):
        PREPROCESS.replace(width_multiple=0)
    with pytest.raises(ValueError, match="preprocess.narrow must be stretch or pad"):
        PREPROCESS.replace(narrow="crop")
    with pytest.raises(ValueError, match="preprocess.channel_order must be rgb or bgr"):
        PREPROCESS.replace(channel_order="gbr")
    with pytest.raises(KeyError, match="channels"):
        Preprocess.from_record({k: v for k, v in PREPROCESS.record().items() if k != "channels"})


def test_every_shipped_model_gives_its_input_spec():
    """quickstart_synthetic.pt predates the width keys: it reads with the default widths, the others as written."""
    from crnn_lit.checkpoint import load_model
    from crnn_lit.config import PROJECT_ROOT

    shipped = sorted((PROJECT_ROOT / "data" / "pretrained").glob("*.pt"))
    assert len(shipped) >= 5
    for path in shipped:  # the PP-OCR import: PP-OCR's spec, narrow crops padded to 192 px (docs/results.md)
        spec = Preprocess.from_conf("ppocr", min_width=192) if path.name.startswith("ppocr") else Preprocess.from_conf()
        assert Preprocess.from_record(load_model(path).config) == spec, path.name
    assert Preprocess.from_record({"height": 64, "channels": 3, "fixed_width": 128}) == \
        Preprocess.from_conf(height=64, channels=3, fixed_width=128)


def test_images_become_network_input():
    rgb = np.zeros((20, 100, 3), np.uint8)
    rgb[:, :50] = 255
    x = PREPROCESS(rgb)
    assert x.shape == (1, 32, 160) and x.dtype == torch.float32
    assert float(x.max()) == 1.0 and float(x.min()) == -1.0
    assert Preprocess.from_conf("dtrb")(rgb).shape == (1, 32, 100)
    assert PREPROCESS.replace(channels=3)(rgb[:, :, 0]).shape == (3, 32, 160)


def test_one_override_reaches_data_backbone_renderer_and_checkpoint_record(tmp_path):
    cfg = compose_train(["preprocess=easyocr", "backbone=vgg_dtrb"], tmp_path)
    assert cfg.backbone.height == 64
    assert instantiate(cfg.data.preprocess) == Preprocess.from_conf("easyocr")
    assert cfg.data.train.renderer.preprocess.height == 64
    record = model_config(cfg)
    assert Preprocess.from_record(record) == Preprocess.from_conf("easyocr")


@pytest.mark.parametrize("channels", [1, 3])
def test_to_pixels_undoes_the_network_input_exactly(channels):
    """The one reverse transform (error sheets, logged samples): a preprocessed image comes back pixel for pixel."""
    from crnn_lit.preprocess import to_pixels, to_tensor

    image = np.random.default_rng(channels).integers(0, 256, (32, 57, channels), dtype=np.uint8)
    assert np.array_equal(to_pixels(to_tensor(image[:, :, 0] if channels == 1 else image)), image)


def test_ppocrs_input_pads_narrow_images_with_zeros_in_bgr_order():
    """PP-OCR's reader: height 48, aspect ratio kept, right-padded with zeros (after normalising) to width 320, the
    channels in OpenCV's BGR order; the sampler's width is the padded one."""
    spec = Preprocess.from_conf("ppocr")
    rgb = np.zeros((24, 60, 3), np.uint8)
    rgb[:, :, 0] = 255  # pure red
    x = spec(rgb)
    assert x.shape == (3, 48, 320) and spec.resize.width_for(60, 24) == 320
    assert torch.equal(x[:, :, :120], torch.tensor([-1.0, -1.0, 1.0])[:, None, None].expand(3, 48, 120))  # B, G, R
    assert not x[:, :, 120:].any()  # zeros: mid-grey
    assert spec(np.zeros((10, 400, 3), np.uint8)).shape == (3, 48, 1920)  # wide: as it is (up to 3200)
    assert np.array_equal(spec.to_pixels(x)[:, :120], np.broadcast_to(np.array([255, 0, 0], np.uint8), (48, 120, 3)))


def test_the_existing_specs_read_as_before():
    """The fields that came with the PP-OCR spec change nothing for the others: stretch, RGB, no padding, and an
    old record (without them) loads with those defaults."""
    from crnn_lit.preprocess import to_channels, to_tensor

    image = np.random.default_rng(0).integers(0, 256, (20, 7, 3), dtype=np.uint8)
    for spec in (PREPROCESS, PREPROCESS.replace(channels=3), Preprocess.from_conf("dtrb")):
        assert torch.equal(spec(image), to_tensor(spec.resize(to_channels(image, spec.channels))))
    assert PREPROCESS(image).shape == (1, 32, 16)  # stretched to min_width
    old = {k: v for k, v in PREPROCESS.record().items() if k not in ("narrow", "channel_order")}
    assert Preprocess.from_record(old) == PREPROCESS


@pytest.mark.parametrize("name", ["default", "dtrb", "easyocr", "ppocr"])
def test_every_input_spec_option_composes_the_python_one(name):
    from crnn_lit.config import compose_config

    assert instantiate(compose_config([f"preprocess={name}"]).preprocess) == Preprocess.from_conf(name)
    assert Preprocess.from_conf("easyocr", width_multiple=1) == Preprocess(height=64, width_multiple=1)
