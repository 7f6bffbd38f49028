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


def test_a_record_names_only_our_model_parts():
    """A checkpoint's record is resolved through an allow-list: it cannot name an arbitrary callable."""
    with pytest.raises(ValueError, match="unknown model part 'os.system'"):
        build_model({"_target_": "os.system", "command": "echo owned"}, BILSTM, 37, 1)
    with pytest.raises(ValueError, match="unknown model part"):
        build_model(VGG, {"_target_": "builtins.eval", "source": "1"}, 37, 1)


def test_named_networks_are_the_shipped_and_the_papers():
    from crnn_lit.checkpoint import load_model
    from crnn_lit.config import PROJECT_ROOT
    from crnn_lit.model import crnn_light, crnn_medium, crnn_paper

    shipped = load_model(PROJECT_ROOT / "data/pretrained/cpu_scene_text.pt")
    light = crnn_light(shipped.charset.num_classes)
    light.load_state_dict(shipped.model.state_dict())  # strict: the same network, tensor for tensor
    assert 8.2e6 < n_params(crnn_paper(37)) < 8.4e6  # the paper's 8.3 M
    assert n_params(light) < n_params(crnn_medium(37)) < n_params(crnn_paper(37))


def test_training_configs_compose_the_python_presets_into_the_records_checkpoints_hold():
    """conf/backbone and conf/rnn take their values from crnn_lit.model.build; the record a training run writes
    is the one the shipped models hold (so they load, and their fingerprints hold, unchanged)."""
    from crnn_lit.checkpoint import load_model
    from crnn_lit.config import PROJECT_ROOT, compose_config, model_config
    from crnn_lit.model.build import BACKBONES

    record = model_config(compose_config(["experiment=cpu_scene_text"]))
    shipped = load_model(PROJECT_ROOT / "data/pretrained/cpu_scene_text.pt").config
    assert {k: record[k] for k in ("backbone", "rnn")} == {k: shipped[k] for k in ("backbone", "rnn")}
    paper = compose_config(["experiment=paper_synthetic", "backbone.channels=[8,16,32,32,64,64,64]"])
    assert list(paper.backbone.batch_norm) == BACKBONES["vgg"]["batch_norm"] and paper.backbone.channels[0] == 8
    assert paper.rnn.hidden_size == 256
