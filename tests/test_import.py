"""Importing DTRB / EasyOCR recognizers: exact logits, the DTRB geometry guard, refusals, ONNX round trip.

The reference network below is written in this test from DTRB's description (its module names and layer
order, None-VGG-BiLSTM-CTC), randomly initialised: nothing is downloaded.
"""

import pytest
import torch
from torch import nn

from crnn_lit.checkpoint import CheckpointError, import_checkpoint, load_model
from crnn_lit.export import export
from crnn_lit.inference import OnnxBackend
from crnn_lit.model.build import build_model

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


class _BiLSTM(nn.Module):  # DTRB's BidirectionalLSTM: batch-first BiLSTM, then Linear(2h -> out)
    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.rnn = nn.LSTM(n_in, hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden, n_out)

    def forward(self, x):
        return self.linear(self.rnn(x)[0])


class _VGGExtractor(nn.Module):  # DTRB's VGG_FeatureExtractor, output_channel oc
    def __init__(self, n_in, oc):
        super().__init__()
        c = [oc // 8, oc // 4, oc // 2, oc]
        self.ConvNet = nn.Sequential(
            nn.Conv2d(n_in, c[0], 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
            nn.Conv2d(c[0], c[1], 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
            nn.Conv2d(c[1], c[2], 3, 1, 1), nn.ReLU(True), nn.Conv2d(c[2], c[2], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[3], c[3], 2, 1, 0), nn.ReLU(True))

    def forward(self, x):
        return self.ConvNet(x)


class DTRBStyle(nn.Module):
    def __init__(self, n_in=1, oc=64, hidden=32, num_class=37):  # 36 characters + blank
        super().__init__()
        self.FeatureExtraction = _VGGExtractor(n_in, oc)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        self.SequenceModeling = nn.Sequential(_BiLSTM(oc, hidden, hidden), _BiLSTM(hidden, hidden, hidden))
        self.Prediction = nn.Linear(hidden, num_class)

    def forward(self, x):  # (N, C, H, W) -> (N, T, classes)
        f = self.AdaptiveAvgPool(self.FeatureExtraction(x).permute(0, 3, 1, 2)).squeeze(3)
        return self.Prediction(self.SequenceModeling(f))


def _saved(tmp_path, height=32, **kw):
    torch.manual_seed(0)
    net = DTRBStyle(**kw)
    for m in net.modules():  # non-trivial BN statistics, so that folding them wrong would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    net.eval()
    path = tmp_path / "dtrb.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # as DataParallel saves it
    return net, path


@pytest.mark.parametrize("height", [32, 64])
def test_imported_dtrb_model_gives_the_same_logits(tmp_path, height):
    net, path = _saved(tmp_path)
    out = import_checkpoint(path, tmp_path / "imported.pt", "dtrb", charset=CHARS, height=height)
    loaded = load_model(out)
    assert loaded.config["backbone"]["channels"] == [8, 16, 32, 32, 64, 64, 64]
    assert loaded.config["rnn"]["hidden_size"] == 32 and loaded.charset.chars == CHARS
    for width in (40, 100, 157):
        x = torch.randn(2, 1, height, width)
        with torch.no_grad():
            expected = net(x).permute(1, 0, 2)
            got = loaded.model(x)
        assert got.shape == expected.shape and got.shape[0] == width // 4 - 1 == loaded.model.output_length(width)
        assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())


def test_a_naive_import_into_the_paper_geometry_would_not_match(tmp_path):
    """The guard: the same weights in crnn_lit's default VGG (padded height pools) load without any error — pools
    have no weights — yet give other frames and other logits. The DTRB options are what makes them equal."""
    net, path = _saved(tmp_path)
    loaded = load_model(import_checkpoint(path, tmp_path / "imported.pt", "dtrb", charset=CHARS))
    naive_backbone = {k: v for k, v in loaded.config["backbone"].items() if k not in ("height_pool", "height_reduce")}
    naive = build_model(naive_backbone, loaded.config["rnn"], len(CHARS) + 1, 1).eval()
    naive.load_state_dict(loaded.model.state_dict())  # loads silently
    x = torch.randn(1, 1, 32, 100)
    with torch.no_grad():
        expected, got = net(x).permute(1, 0, 2), naive(x)
    assert got.shape[0] == expected.shape[0] + 2  # T = W/4 + 1 instead of W/4 - 1
    assert not torch.allclose(got[1:-1], expected, atol=1e-2)


def test_onnx_export_of_an_imported_model_matches(tmp_path):
    net, path = _saved(tmp_path)
    ckpt = import_checkpoint(path, tmp_path / "imported.pt", "dtrb", charset=CHARS)
    backend = OnnxBackend(export(str(ckpt), "onnx", tmp_path / "imported.onnx"))
    x = torch.randn(3, 1, 32, 120)
    with torch.no_grad():
        expected = net(x).permute(1, 0, 2)
    assert torch.allclose(backend.logits(x), expected, atol=1e-4)
    assert backend.output_length(120) == 120 // 4 - 1 == expected.shape[0]


def test_what_does_not_map_is_refused_by_name(tmp_path):
    _, path = _saved(tmp_path)
    state = torch.load(path, weights_only=True)
    cases = {
        "TPS transformation": {**state, "module.Transformation.LocalizationNetwork.conv.0.weight": torch.zeros(1)},
        "attention decoder": {**state, "module.Prediction.attention_cell.rnn.weight_ih": torch.zeros(1)},
        "ResNet feature extractor": {**{k: v for k, v in state.items() if "FeatureExtraction" not in k},
                                     "module.FeatureExtraction.ConvNet.conv0_1.weight": torch.zeros(1)},
    }
    for what, bad in cases.items():
        torch.save(bad, tmp_path / "bad.pth")
        with pytest.raises(CheckpointError, match=what):
            import_checkpoint(tmp_path / "bad.pth", tmp_path / "x.pt", "dtrb", charset=CHARS)
    with pytest.raises(CheckpointError, match="37 classes.*charset has 10"):
        import_checkpoint(path, tmp_path / "x.pt", "dtrb", charset="0123456789")
    with pytest.raises(CheckpointError, match="--charset is required"):
        import_checkpoint(path, tmp_path / "x.pt", "dtrb")
