import pytest
import torch

from crnn_lit.model import build_model
from crnn_lit.model.backbone import WidthPlan

output_length = WidthPlan().output_length  # the paper's plan: T = W // 4 + 1

VGG = {"_target_": "crnn_lit.model.backbone.VGG", "channels": [64, 128, 256, 256, 512, 512, 512]}
VGG_LIGHT = {"_target_": "crnn_lit.model.backbone.VGG", "channels": [32, 64, 128, 128, 256, 256, 256]}
RESNET = {"_target_": "crnn_lit.model.backbone.ResNet", "channels": [16, 32, 64, 64], "blocks": [1, 1, 1, 1],
          "stem_channels": 8}
BILSTM = {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "lstm", "hidden_size": 256, "num_layers": 2,
          "project": True}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_output_length_formula():
    # T = floor(W / 4) + 1 at height 32
    assert [output_length(w) for w in (16, 32, 99, 100, 101, 102, 103, 104, 400)] == [5, 9, 25, 26, 26, 26, 26, 27, 101]


@pytest.mark.parametrize("backbone", [VGG_LIGHT, RESNET], ids=["vgg_light", "resnet"])
@pytest.mark.parametrize("width", [16, 33, 100, 101, 150, 257])
def test_forward_length_matches_formula(backbone, width):
    model = build_model(backbone, {"_target_": "crnn_lit.model.rnn.SequenceModel", "hidden_size": 16,
                                   "num_layers": 1}, 37, 1).eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 1, 32, width))
    assert logits.shape == (width // 4 + 1, 2, 37)
    assert model.output_length(width) == logits.shape[0]


def test_paper_model_parameter_count():
    # the paper reports 8.3 M parameters for 7-conv VGG + 2 × BiLSTM(256) + 37-way head
    model = build_model(VGG, BILSTM, 37, 1)
    assert n_params(model) == 8_329_765
    assert n_params(model.backbone) == 5_549_824  # BN replaces the bias of conv5/6


def test_paper_model_reads_any_width_and_rgb():
    model = build_model(VGG, BILSTM, 37, 3).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 64)).shape == (17, 1, 37)


@pytest.mark.parametrize(("cell", "size"), [("gru", 2 * 32), ("none", 256)])
def test_rnn_options(cell, size):
    model = build_model(VGG_LIGHT, {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": cell,
                                    "hidden_size": 32, "num_layers": 3}, 11, 1)
    assert model.rnn.output_size == size
    assert model(torch.zeros(1, 1, 32, 40)).shape == (11, 1, 11)


def test_wrong_height_is_a_clear_error():
    model = build_model(VGG_LIGHT, {"_target_": "crnn_lit.model.rnn.SequenceModel", "hidden_size": 8}, 5, 1)
    with pytest.raises(ValueError, match="input height 32"):
        model(torch.zeros(1, 1, 48, 100))
