"""A tiny batch must be learnt exactly: CTC loss falls and greedy decoding returns the labels."""

import functools

import torch

from conftest import ROOT
from crnn_lit.charset import Charset
from crnn_lit.data.batching import Collate
from crnn_lit.data.dataset import PreparedDataset
from crnn_lit.data.sources.renderer import SyntheticWords, WordRenderer
from crnn_lit.data.transforms import Resize
from crnn_lit.model import build_model
from crnn_lit.system import CRNNSystem
from crnn_lit.transcription import GreedyDecoder


def test_tiny_batch_overfits_and_decodes_its_labels():
    torch.manual_seed(0)
    charset = Charset.from_file(ROOT / "data/charsets/lowercase36.txt")
    renderer = WordRenderer(words_file=str(ROOT / "data/words/english.txt"), fonts_dir=str(ROOT / "data/fonts"), seed=7)
    model = build_model({"_target_": "crnn_lit.model.backbone.VGG", "channels": [16, 32, 64, 64, 128, 128, 128]},
                        {"_target_": "crnn_lit.model.rnn.SequenceModel", "hidden_size": 64, "num_layers": 1}, 37, 1)
    data = PreparedDataset(SyntheticWords(renderer, 100), charset, Resize(32, 16, 400, "bucketed", 100), 1,
                           model.output_length)
    batch = Collate(model.output_length)([data[i] for i in range(4)])
    assert len(batch) == 4
    system = CRNNSystem(model, charset, optimizer=functools.partial(torch.optim.AdamW, lr=2e-3), scheduler=None,
                        decoder=GreedyDecoder, model_config={})
    optimizer = system.configure_optimizers()
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = system._ctc_loss(model(batch.images), batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    model.eval()
    with torch.no_grad():
        predictions = GreedyDecoder(charset)(model(batch.images).log_softmax(2), batch.input_lengths)
    assert [p.text for p in predictions] == batch.labels
    assert all(0.2 < p.confidence <= 1.0 for p in predictions)
