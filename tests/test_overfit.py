"""A tiny batch must be learnt exactly: CTC loss falls and greedy decoding returns the labels."""

import functools

import torch

from conftest import PREPROCESS, ROOT
from crnn_lit.charset import Charset
from crnn_lit.data.batching import Collate
from crnn_lit.data.dataset import PreparedDataset
from crnn_lit.data.sources.renderer import SyntheticWords, WordRenderer
from crnn_lit.model import build_model
from crnn_lit.training.system import CRNNSystem
from crnn_lit.transcription import GreedyDecoder


def test_tiny_batch_overfits_and_decodes_its_labels():
    """Trained until eval-mode greedy decoding returns all four labels confidently, within a step cap: the steps
    that takes differ by CPU (float paths of the kernels differ), the outcome must not. Seeds 0-4 took 300-475
    steps here (AMD EPYC, 1 and 2 threads); the cap leaves twice that. Clipping as the trainer does
    (gradient_clip_val 5): without it, AdamW at 2e-3 spiked and failed on some CPUs after 300 fixed steps."""
    torch.manual_seed(0)
    charset = Charset.from_file(ROOT / "data/charsets/lowercase36.txt")
    renderer = WordRenderer(words_file=str(ROOT / "data/words/english.txt"), fonts_dir=str(ROOT / "data/fonts"), preprocess=PREPROCESS,
                            seed=7)
    model = build_model({"_target_": "crnn_lit.model.backbone.VGG", "channels": [16, 32, 64, 64, 128, 128, 128]},
                        {"_target_": "crnn_lit.model.rnn.SequenceModel", "hidden_size": 64, "num_layers": 1}, 37, 1)
    data = PreparedDataset(SyntheticWords(renderer, 100), charset, PREPROCESS,
                           model.output_length)
    batch = Collate(model.output_length)([data[i] for i in range(4)])
    assert len(batch) == 4
    system = CRNNSystem(model, charset, optimizer=functools.partial(torch.optim.AdamW, lr=1e-3), scheduler=None,
                        model_config={})
    optimizer = system.configure_optimizers()
    decoder = GreedyDecoder(charset)
    losses, predictions = [], []
    for step in range(1, 1001):
        model.train()
        optimizer.zero_grad()
        loss = system.loss(model(batch.images), batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())
        if step % 25:
            continue
        model.eval()  # BN running statistics of only these 4 images
        with torch.no_grad():
            predictions = decoder(model(batch.images).log_softmax(2), batch.input_lengths)
        # confidence = product of per-frame maxima: > 0.3 is far from a lucky argmax
        if [p.text for p in predictions] == batch.labels and min(p.confidence for p in predictions) > 0.3:
            break
    assert [p.text for p in predictions] == batch.labels, (step, [p.text for p in predictions])
    assert min(p.confidence for p in predictions) > 0.3, [p.confidence for p in predictions]
    assert losses[-1] < 0.05 * losses[0], (losses[0], losses[-1])


def test_channels_last_changes_the_layout_not_the_numbers():
    charset = Charset.from_file(ROOT / "data/charsets/lowercase36.txt")
    renderer = WordRenderer(words_file=str(ROOT / "data/words/english.txt"), fonts_dir=str(ROOT / "data/fonts"), preprocess=PREPROCESS,
                            seed=3)
    spec = ({"_target_": "crnn_lit.model.backbone.VGG", "channels": [8, 16, 32, 32, 64, 64, 64]},
            {"_target_": "crnn_lit.model.rnn.SequenceModel", "hidden_size": 16, "num_layers": 1}, 37, 1)
    torch.manual_seed(0)
    plain = build_model(*spec)
    nhwc = build_model(*spec)
    nhwc.load_state_dict(plain.state_dict())
    data = PreparedDataset(SyntheticWords(renderer, 10), charset, PREPROCESS,
                           plain.output_length)
    batch = Collate(plain.output_length)([data[i] for i in range(4)])
    systems = [CRNNSystem(m, charset, optimizer=None, scheduler=None, model_config={},
                          channels_last=cl) for m, cl in ((plain, False), (nhwc, True))]
    def conv2(model):  # the second conv: the first has one input channel, where both layouts coincide
        return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][1].weight

    assert conv2(nhwc).is_contiguous(memory_format=torch.channels_last)
    assert not conv2(plain).is_contiguous(memory_format=torch.channels_last)
    losses = []
    for system in systems:
        loss = system.loss(system(batch.images), batch)
        loss.backward()
        losses.append(loss.item())
    assert abs(losses[0] - losses[1]) < 1e-4 * abs(losses[0]) and losses[0] > 0
    for p, q in zip(plain.parameters(), nhwc.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-3)
