"""Importing DTRB / EasyOCR recognizers: exact logits, the DTRB geometry guard, refusals, ONNX round trip.

The reference networks below are written in this test from DTRB's description (its module names and layer
order: {None,TPS}-{VGG,ResNet}-BiLSTM-CTC), randomly initialised: nothing is downloaded. The TPS reference builds
its grid as DTRB does (float64 Δ_C⁻¹ and P̂ stored as buffers, T = Δ_C⁻¹[C′; 0], P̂T sampled with
align_corners=True), independently of crnn_lit.model.transform.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from crnn_lit.checkpoint import CheckpointError, import_checkpoint, load_model
from crnn_lit.export import export
from crnn_lit.model.build import build_model
from crnn_lit.reading.inference import OnnxBackend

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


class _Block(nn.Module):  # DTRB's BasicBlock: two 3x3 conv+BN, a 1x1 conv+BN shortcut when the width changes
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
                           if cin != cout else None)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class _ResNet(nn.Module):  # DTRB's ResNet_FeatureExtractor(...).ConvNet for output_channel oc: blocks 1-2-5-3
    def __init__(self, n_in, oc):
        super().__init__()
        s = [oc // 4, oc // 2, oc, oc]
        conv = lambda cin, cout, k=3, st=1, p=1: nn.Conv2d(cin, cout, k, st, p, bias=False)
        self.conv0_1, self.bn0_1 = conv(n_in, oc // 16), nn.BatchNorm2d(oc // 16)
        self.conv0_2, self.bn0_2 = conv(oc // 16, oc // 8), nn.BatchNorm2d(oc // 8)
        stage = lambda cin, cout, n: nn.Sequential(*[_Block(cin if i == 0 else cout, cout) for i in range(n)])
        self.layer1, self.conv1, self.bn1 = stage(oc // 8, s[0], 1), conv(s[0], s[0]), nn.BatchNorm2d(s[0])
        self.layer2, self.conv2, self.bn2 = stage(s[0], s[1], 2), conv(s[1], s[1]), nn.BatchNorm2d(s[1])
        self.layer3, self.conv3, self.bn3 = stage(s[1], s[2], 5), conv(s[2], s[2]), nn.BatchNorm2d(s[2])
        self.layer4 = stage(s[2], s[3], 3)
        self.conv4_1, self.bn4_1 = conv(s[3], s[3], 2, (2, 1), (0, 1)), nn.BatchNorm2d(s[3])
        self.conv4_2, self.bn4_2 = conv(s[3], s[3], 2, 1, 0), nn.BatchNorm2d(s[3])

    def forward(self, x):
        cbr = lambda x, i: F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        x = F.max_pool2d(cbr(cbr(x, "0_1"), "0_2"), 2, 2)
        x = F.max_pool2d(cbr(self.layer1(x), 1), 2, 2)
        x = F.max_pool2d(cbr(self.layer2(x), 2), 2, (2, 1), (0, 1))
        x = cbr(self.layer3(x), 3)
        return cbr(cbr(self.layer4(x), "4_1"), "4_2")


class _ResNetExtractor(nn.Module):
    def __init__(self, n_in, oc):
        super().__init__()
        self.ConvNet = _ResNet(n_in, oc)

    def forward(self, x):
        return self.ConvNet(x)


class _Localization(nn.Module):  # DTRB's LocalizationNetwork: 4 conv+BN (64-128-256-512), fc 512 -> 256 -> 2F
    def __init__(self, fiducials, n_in):
        super().__init__()
        layers, c = [], n_in
        for i, out in enumerate((64, 128, 256, 512)):
            layers += [nn.Conv2d(c, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True),
                       nn.MaxPool2d(2, 2) if i < 3 else nn.AdaptiveAvgPool2d(1)]
            c = out
        self.conv = nn.Sequential(*layers)
        self.localization_fc1 = nn.Sequential(nn.Linear(512, 256), nn.ReLU(True))
        self.localization_fc2 = nn.Linear(256, 2 * fiducials)

    def forward(self, x):
        return self.localization_fc2(self.localization_fc1(self.conv(x).flatten(1))).view(len(x), -1, 2)


class _GridGenerator(nn.Module):  # DTRB's: Δ_C⁻¹ and P̂ computed in float64, kept as float32 buffers
    def __init__(self, fiducials, size):
        super().__init__()
        h, w, n = *size, fiducials
        x = np.linspace(-1.0, 1.0, n // 2)
        c = np.concatenate([np.stack([x, -np.ones(n // 2)], 1), np.stack([x, np.ones(n // 2)], 1)])
        r = np.linalg.norm(c[:, None] - c[None], axis=2) + np.eye(n)  # U(0) = 1² log 1 = 0
        delta = np.zeros((n + 3, n + 3))
        delta[:n, 0], delta[:n, 1:3], delta[:n, 3:] = 1, c, r ** 2 * np.log(r)
        delta[n:n + 2, 3:], delta[n + 2, 3:] = c.T, 1
        gx, gy = np.meshgrid((np.arange(-w, w, 2) + 1) / w, (np.arange(-h, h, 2) + 1) / h)  # pixel centres
        p = np.stack([gx, gy], 2).reshape(-1, 2)
        d = np.linalg.norm(p[:, None] - c[None], axis=2)
        self.register_buffer("inv_delta_C", torch.tensor(np.linalg.inv(delta)).float())
        self.register_buffer("P_hat", torch.tensor(np.concatenate([np.ones((len(p), 1)), p,
                                                                   d ** 2 * np.log(d + 1e-6)], 1)).float())


class _TPS(nn.Module):  # DTRB's TPS_SpatialTransformerNetwork: any input size -> the fixed rectified size
    def __init__(self, fiducials, size, n_in):
        super().__init__()
        self.size = size
        self.LocalizationNetwork = _Localization(fiducials, n_in)
        self.GridGenerator = _GridGenerator(fiducials, size)

    def forward(self, x):
        c = self.LocalizationNetwork(x)
        t = self.GridGenerator.inv_delta_C @ torch.cat([c, c.new_zeros(len(x), 3, 2)], 1)
        grid = (self.GridGenerator.P_hat @ t).view(len(x), *self.size, 2)
        return F.grid_sample(x, grid, padding_mode="border", align_corners=True)


class DTRBStyle(nn.Module):
    def __init__(self, n_in=1, oc=64, hidden=32, num_class=37, tps=False, extractor="vgg"):  # 36 characters + blank
        super().__init__()
        if tps:
            self.Transformation = _TPS(20, (32, 100), n_in)
        self.FeatureExtraction = (_VGGExtractor if extractor == "vgg" else _ResNetExtractor)(n_in, oc)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        self.SequenceModeling = nn.Sequential(_BiLSTM(oc, hidden, hidden), _BiLSTM(hidden, hidden, hidden))
        self.Prediction = nn.Linear(hidden, num_class)

    def forward(self, x):  # (N, C, H, W) -> (N, T, classes)
        if hasattr(self, "Transformation"):
            x = self.Transformation(x)
        f = self.AdaptiveAvgPool(self.FeatureExtraction(x).permute(0, 3, 1, 2)).squeeze(3)
        return self.Prediction(self.SequenceModeling(f))


def _saved(tmp_path, height=32, **kw):
    torch.manual_seed(0)
    net = DTRBStyle(**kw)
    for m in net.modules():  # non-trivial BN statistics, so that folding them wrong would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    if kw.get("tps"):  # a trained-looking warp: DTRB's slanted initial points, moved by the image
        fc2 = net.Transformation.LocalizationNetwork.localization_fc2
        x = torch.linspace(-1, 1, 10)
        slanted = torch.cat([torch.stack([x, torch.linspace(0, -1, 10)], 1), torch.stack([x, torch.linspace(1, 0, 10)], 1)])
        with torch.no_grad():
            fc2.weight.normal_(0, 0.02)
            fc2.bias.copy_(slanted.flatten())
    net.eval()
    tmp_path.mkdir(parents=True, exist_ok=True)
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
    _, tps_path = _saved(tmp_path / "tps", tps=True)
    tps = torch.load(tps_path, weights_only=True)
    cases = {
        "TPS transformation .* lacks": {**state, "module.Transformation.LocalizationNetwork.conv.0.weight": torch.zeros(1)},
        r"TPS grid \(GridGenerator.P_hat\) is not DTRB's for F=20 at 32×100": {
            **tps, "module.Transformation.GridGenerator.P_hat": tps["module.Transformation.GridGenerator.P_hat"] * 0.9},
        "attention decoder": {**state, "module.Prediction.attention_cell.rnn.weight_ih": torch.zeros(1)},
        "ResNet feature extractor: missing": {**{k: v for k, v in state.items() if "FeatureExtraction" not in k},
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


@pytest.mark.parametrize("extractor", ["vgg", "resnet"])
def test_imported_tps_models_give_the_same_logits(tmp_path, extractor):
    """TPS-VGG-BiLSTM-CTC and TPS-ResNet-BiLSTM-CTC: the same logits and readings as DTRB's forward, at DTRB's
    32×100 and from a wider input (its TPS rectifies any input to 32×100, so T stays 26)."""
    from crnn_lit.transcription import GreedyDecoder

    net, path = _saved(tmp_path, tps=True, extractor=extractor)
    loaded = load_model(import_checkpoint(path, tmp_path / "imported.pt", "dtrb", charset=CHARS))
    assert loaded.config["transform"] == {"_target_": "crnn_lit.model.transform.TPS", "fiducials": 20,
                                          "rectified_size": [32, 100], "channels": [64, 128, 256, 512],
                                          "hidden": 256, "align_corners": True}
    assert (loaded.config["width_policy"], loaded.config["fixed_width"]) == ("fixed", 100)
    if extractor == "resnet":
        assert loaded.config["backbone"]["stem_channels"] == [4, 8]
        assert loaded.config["backbone"]["channels"] == [16, 32, 64, 64]
        assert loaded.config["backbone"]["blocks"] == [1, 2, 5, 3]
    decoder = GreedyDecoder(loaded.charset)
    torch.manual_seed(1)
    for width in (100, 160):
        x = torch.rand(4, 1, 32, width) * 2 - 1
        with torch.no_grad():
            expected = net(x).permute(1, 0, 2)
            got = loaded.model(x)
        frames = 24 if extractor == "vgg" else 26  # DTRB's VGG: W/4 - 1; ResNet: W/4 + 1 (of the rectified 100)
        assert got.shape == expected.shape == (frames, 4, 37) and loaded.model.output_length(width) == frames
        assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())
        lengths = torch.full((4,), frames)
        assert [p.text for p in decoder(got.log_softmax(2), lengths)] == \
               [p.text for p in decoder(expected.log_softmax(2), lengths)]
    # the rectified images agree to float32 rounding of the grid (DTRB's own float32 grid is ~1.5e-5 from its
    # float64 value: up to ~1e-3 on pixel noise in [-1, 1]); the warp is far from the identity, and DTRB's sampling
    # convention (align_corners=True) is part of the exactness: ours (False) samples elsewhere
    with torch.no_grad():
        x = torch.rand(2, 1, 32, 100) * 2 - 1
        expected, warped = net.Transformation(x), loaded.model.transform(x)
        # the feature extractors alone, on one rectified image (the logits of a random net vary little)
        assert torch.allclose(loaded.model.backbone(expected), net.FeatureExtraction(expected), atol=1e-5)
        loaded.model.transform.align_corners = False
        other = loaded.model.transform(x)
    assert (warped - expected).abs().max() < 5e-3 and (warped - x).abs().mean() > 0.3
    assert (other - expected).abs().mean() > 0.1


def test_onnx_export_of_an_imported_tps_model_matches(tmp_path):
    """The exported TPS model takes any width and gives DTRB's 32×100 reading; the sidecar says T is fixed."""
    net, path = _saved(tmp_path, tps=True)
    ckpt = import_checkpoint(path, tmp_path / "imported.pt", "dtrb", charset=CHARS)
    backend = OnnxBackend(export(str(ckpt), "onnx", tmp_path / "imported.onnx"))
    for width in (100, 140):
        x = torch.rand(3, 1, 32, width) * 2 - 1
        with torch.no_grad():
            expected = net(x).permute(1, 0, 2)
        assert torch.allclose(backend.logits(x), expected, atol=1e-4), float((backend.logits(x) - expected).abs().max())
        assert backend.output_length(width) == 24 == expected.shape[0]
