"""The transformation stage: TPS maths (identity at init, affine maps, fiducial interpolation), every backbone and
rnn, the frame count at either width choice, the checkpoint record and init_from onto trained weights."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_MODEL, TINY_TPS
from crnn_lit.checkpoint import CheckpointError, init_from, load_model, save_weights
from crnn_lit.model import build_model
from crnn_lit.model.transform import TPS, NoTransform, fiducial_points, spline_basis, tps_system_inverse

SMALL = {"channels": [8, 16, 16, 32], "hidden": 16}
BACKBONES = {
    "vgg_light": {"_target_": "crnn_lit.model.backbone.VGG", "channels": [8, 16, 24, 24, 32, 32, 32],
                  "batch_norm": [1, 2, 3, 4, 5, 6, 7]},
    "vgg_dtrb": {"_target_": "crnn_lit.model.backbone.VGG", "channels": [8, 16, 24, 24, 32, 32, 32],
                 "height_pool": "dtrb", "height_reduce": "mean"},
    "resnet": {"_target_": "crnn_lit.model.backbone.ResNet", "channels": [16, 32, 64, 64], "blocks": [1, 1, 1, 1],
               "stem_channels": 8},
}
RNNS = {cell: {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": cell, "hidden_size": 16, "num_layers": 2}
        for cell in ("lstm", "gru", "none")}


def images(n, width, seed=0):
    return torch.rand(n, 1, 32, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("width", [16, 100, 400])
def test_tps_starts_as_the_identity(width):
    """Zero weights and C as the bias of the last layer: the first pass returns the input's own pixels (up to
    grid_sample's float rounding), in training mode too."""
    x = images(2, width)
    tps = TPS(1, **SMALL)
    assert (tps(x) - x).abs().max() < 1e-4
    assert (tps.eval()(x) - x).abs().max() < 1e-4


def test_the_spline_maps_fiducial_points_exactly_and_reproduces_affine_maps():
    points = fiducial_points(20)
    moved = points + 0.2 * torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coefficients = tps_system_inverse(points)[:, :20] @ (moved - points)
    mapped = points + spline_basis(points, points) @ coefficients  # f(c_k) = c′_k, up to the grid's ε in U
    assert torch.allclose(mapped, moved, atol=1e-5)
    # C′ = A·C + b (zoom out to 0.6 wide, shift right, squash vertically) warps like affine_grid: no bending at all
    theta = torch.tensor([[0.6, 0.0, 0.25], [0.1, 0.8, 0.0]])
    tps = TPS(1, **SMALL).eval()
    with torch.no_grad():
        tps.regressor[2].bias.copy_((points.float() @ theta[:, :2].T + theta[:, 2]).flatten())
    x = images(3, 120)
    expected = F.grid_sample(x, F.affine_grid(theta.expand(3, 2, 3), [3, 1, 32, 120], align_corners=False),
                             padding_mode="border", align_corners=False)
    assert (tps(x) - x).abs().mean() > 0.2
    # float32 rounding of the two grids (~1e-6) is up to ~4e-4 on pixel noise in [-1, 1]; a wrong map moves whole pixels
    assert torch.allclose(tps(x), expected, atol=2e-3), float((tps(x) - expected).abs().max())


@pytest.mark.parametrize("rnn", sorted(RNNS))
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_tps_works_with_every_backbone_and_rnn(backbone, rnn):
    """T follows the input width when the rectified size is the input's, and is fixed by DTRB's fixed size; the
    CTC loss reaches the localization network's last layer from the first step."""
    for rectified in (None, [32, 100]):
        model = build_model(BACKBONES[backbone], RNNS[rnn], 11, 1,
                            {"_target_": "crnn_lit.model.transform.TPS", "rectified_size": rectified, **SMALL})
        for width in (40, 163):
            logits = model(images(2, width))
            frames = model.backbone.output_length(width if rectified is None else 100)
            assert logits.shape == (frames, 2, 11) and model.output_length(width) == frames
        logits.log_softmax(2).sum().backward()
        assert model.transform.regressor[2].weight.grad.abs().sum() > 0


def test_bad_tps_settings_are_clear_errors():
    with pytest.raises(ValueError, match="fiducials must be even"):
        TPS(1, fiducials=7)
    with pytest.raises(ValueError, match="backbone's input height 32"):
        build_model(TINY_MODEL["backbone"], TINY_MODEL["rnn"], 11, 1,
                    {"_target_": "crnn_lit.model.transform.TPS", "rectified_size": [48, 100]})


def test_the_record_carries_the_transform_and_old_records_mean_none(tiny_ckpt, tiny_tps_ckpt, tmp_path):
    """A TPS checkpoint rebuilds its stage from the record alone (the grid's matrices are derived, not stored); a
    record without `transform` (every checkpoint before the stage) loads as none, with the same weights."""
    loaded = load_model(tiny_tps_ckpt)
    assert loaded.config["transform"] == TINY_TPS and isinstance(loaded.model.transform, TPS)
    assert not any("points" in k or "inverse" in k for k in loaded.model.state_dict())
    again = load_model(save_weights(tmp_path / "again.pt", loaded.model, loaded.charset, loaded.config))
    x = images(2, 90)
    with torch.no_grad():
        assert torch.equal(again.model(x), loaded.model(x))
    old = load_model(tiny_ckpt)
    assert "transform" not in old.config and isinstance(old.model.transform, NoTransform)
    assert old.model.output_length_spec() == {"formula": "T = floor(W / stride) + offset", "stride": 4, "offset": 1}


def test_init_from_adds_tps_to_trained_weights(tiny_ckpt, caplog):
    """`transform=tps init_from=<model without one>`: every weight loads, the stage starts as the identity, so the
    new model reads what the source read; any other missing weight is an architecture mismatch."""
    source = load_model(tiny_ckpt)
    model = build_model(TINY_MODEL["backbone"], TINY_MODEL["rnn"], 37, 1, TINY_TPS).eval()
    import logging

    with caplog.at_level(logging.INFO):
        done = init_from(model, source.charset, tiny_ckpt, logging.getLogger("test"))
    assert done.fresh == [k for k in model.state_dict() if k.startswith("transform.")] and done.fresh
    assert "transform weights start as the identity warp" in caplog.text
    x = images(3, 100)
    with torch.no_grad():
        assert torch.allclose(model(x), source.model(x), atol=1e-4)
    deeper = build_model(TINY_MODEL["backbone"], {**TINY_MODEL["rnn"], "num_layers": 3}, 37, 1)
    with pytest.raises(CheckpointError, match="architecture differs at .*rnn.layers.2"):
        init_from(deeper, source.charset, tiny_ckpt)


def test_evaluate_and_recognizer_read_a_tps_model_alike(tiny_tps_ckpt, compose_evaluate, tmp_path):
    """A TPS checkpoint goes through evaluate and the Recognizer like any other: the same readings of the same
    crops (both take the frame count from the model)."""
    import numpy as np
    from PIL import Image

    from crnn_lit import Recognizer
    from crnn_lit.evaluate import evaluate

    root = tmp_path / "benchmarks" / "iiit5k"
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, width in enumerate((24, 70, 133, 260)):
        Image.fromarray(rng.integers(0, 255, (40, width), dtype=np.uint8)).save(root / "img" / f"{i}.png")
    (root / "labels.tsv").write_text("".join(f"img/{i}.png\tword\n" for i in range(4)))
    result = evaluate(compose_evaluate([f"ckpt={tiny_tps_ckpt}", f"benchmark_root={root.parent}", "only=[iiit5k]",
                                        "benchmarks.iiit5k.lexicons=null", "decoder=greedy", "~decoder@lm_decoder",
                                        "error_sheet=0"]))
    assert [(c["lexicon"], c["images"]) for c in result["columns"]] == [("none", 4)]
    rows = (tmp_path / "predictions" / "IIIT5K_none.tsv").read_text().splitlines()[1:]
    evaluated = {row.split("\t")[0]: row.split("\t")[2] for row in rows}
    read = Recognizer.from_checkpoint(tiny_tps_ckpt, decoder="greedy").read(root / "img")
    assert evaluated == {Path(p.image).relative_to(root).as_posix(): p.text for p in read} and any(evaluated.values())
