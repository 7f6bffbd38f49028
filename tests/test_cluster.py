"""What GPU training needs, checked on CPU: a batch of rejected samples still steps (DDP needs every rank to), bf16
autocast with CTC in fp32, the GPU trainer config, pinned batches, loader workers from the CPUs a process has.
(DDP itself and the SLURM launcher: tests/test_scaling.py.)"""

from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.plugins.environments import LightningEnvironment, SLURMEnvironment
from torch.utils.data._utils.pin_memory import pin_memory

from conftest import FAST, PREPROCESS, ROOT, TINY_MODEL, compose_train
from crnn_lit.charset import Charset
from crnn_lit.data.batching import Batch, Collate
from crnn_lit.data.datamodule import TextDataModule, auto_num_workers
from crnn_lit.data.dataset import Item, Rejected
from crnn_lit.data.sources.renderer import SyntheticWords, WordRenderer
from crnn_lit.model import build_model
from crnn_lit.train import train
from crnn_lit.training.system import CRNNSystem

CHARSET = Charset.from_file(ROOT / "data/charsets/lowercase36.txt")
WORDS = ["paper", "crnn", "scene", "text", "moniker", "read"]


def _system() -> CRNNSystem:
    torch.manual_seed(0)
    model = build_model(TINY_MODEL["backbone"], TINY_MODEL["rnn"], CHARSET.num_classes, 1)
    return CRNNSystem(model, CHARSET, optimizer=None, scheduler=None, model_config=TINY_MODEL)


def _batch(output_length) -> Batch:
    """Word-sized random images (16 px per letter) with their words as labels."""
    generator = torch.Generator().manual_seed(1)
    items = [Item(torch.rand(1, 32, 16 * len(w), generator=generator) * 2 - 1, CHARSET.encode(w), w, w) for w in WORDS]
    return Collate(output_length)(items)


# --- a batch whose samples were all rejected ------------------------------------------------------------------
def test_a_batch_without_usable_samples_steps_with_zero_gradients_for_every_parameter():
    """What keeps DDP ranks in step (the 2-process run: test_scaling.py): a loss of exactly 0 whose backward
    reaches every parameter (so the gradient all-reduce has all its buckets), with BN running statistics intact."""
    system = _system().train()
    before = {k: v.clone() for k, v in system.state_dict().items() if "running" in k}
    empty = Collate(system.model.output_length)([Rejected("too_long", "a"), Rejected("unreadable", "b")])
    loss = system.training_step(empty, 0)
    loss.backward()
    assert loss.item() == 0.0 and len(before) == 14  # 7 BN layers: mean and variance each
    grads = {name: p.grad for name, p in system.named_parameters()}
    assert all(g is not None and not g.any() for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.equal(v, system.state_dict()[k]) for k, v in before.items())


# --- mixed precision --------------------------------------------------------------------------------------------
def test_bf16_autocast_gives_bf16_logits_an_fp32_ctc_and_the_fp32_loss(monkeypatch):
    system = _system().eval()  # eval: both passes normalize with the same (running) BN statistics
    batch = _batch(system.model.output_length)
    ctc_inputs = []
    ctc = torch.nn.functional.ctc_loss

    def spy(log_probs, *args, **kwargs):
        ctc_inputs.append(log_probs.dtype)
        return ctc(log_probs, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "ctc_loss", spy)
    with torch.no_grad():
        reference = system.loss(system(batch.images), batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = system(batch.images)
            loss = system.loss(logits, batch)
    assert reference.dtype == torch.float32 and logits.dtype == torch.bfloat16
    assert ctc_inputs == [torch.float32, torch.float32]  # CTC sums over alignments in fp32 even under autocast
    assert loss.dtype == torch.float32 and math.isfinite(loss.item()) and loss.item() > 1.0
    assert loss.item() == pytest.approx(reference.item(), rel=0.05)


def test_trainer_gpu_config_trains_on_cpu_in_bf16(tmp_path):
    """conf/trainer/gpu.yaml with only the accelerator changed: bf16-mixed in effect, 4 steps, a finite loss."""
    out = tmp_path / "precision"
    cfg = compose_train([*FAST, "trainer=gpu", "trainer.accelerator=cpu", "~callbacks.progress_bar",
                         "+callbacks.precision._target_=runtime_helpers.RecordPrecision",
                         f"+callbacks.precision.out_dir={out}"], tmp_path)
    metrics = train(cfg)
    record = json.loads((out / "precision_rank0.json").read_text())
    assert record == {"precision": "bf16-mixed", "logits": ["torch.bfloat16"] * 4, "step": 4}  # 64 samples / 16
    assert math.isfinite(metrics["train/loss"]) and metrics["train/loss"] > 0


# --- loaders ------------------------------------------------------------------------------------------------------
def test_batch_pin_memory_pins_every_tensor_and_keeps_the_rest(monkeypatch):
    batch = _batch(lambda w: w // 4 + 1)
    pinned = []
    if not torch.cuda.is_available():  # page-locked memory needs an accelerator: record what would be pinned
        monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: pinned.append(t) or t.clone())
    out = pin_memory(batch)  # what the DataLoader's pinning thread does with each batch
    assert type(out) is Batch and out is not batch
    tensors = ("images", "widths", "input_lengths", "targets", "target_lengths")
    for name in tensors:
        assert torch.equal(getattr(out, name), getattr(batch, name)), name
        assert getattr(out, name).is_pinned() if torch.cuda.is_available() else getattr(out, name) is not getattr(
            batch, name)
    if pinned:
        assert [id(t) for t in pinned] == [id(getattr(batch, name)) for name in tensors]
    assert (out.labels, out.keys, out.rejected, out.padding_waste) == (
        batch.labels, batch.keys, batch.rejected, batch.padding_waste) and 0 < batch.padding_waste < 1


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)


def test_loaders_resolve_auto_workers_and_pin_only_for_cuda(two_cpus):
    renderer = WordRenderer(words_file=str(ROOT / "data/words/english.txt"), fonts_dir=str(ROOT / "data/fonts"),
                            preprocess=PREPROCESS, seed=0)
    words = SyntheticWords(renderer, 8)
    loaders = {}
    for device in ("cpu", "cuda"):  # the loaders are built, not iterated: no GPU needed
        module = TextDataModule(words, words, CHARSET, lambda w: w // 4 + 1, preprocess=PREPROCESS, batch_size=4,
                                eval_batch_size=4, num_workers="auto", samples_per_epoch=None, seed=0)
        module.trainer = SimpleNamespace(num_devices=1, global_rank=0,
                                         strategy=SimpleNamespace(root_device=torch.device(device)))
        loaders[device] = module.val_dataloader()
        loaders[device, "train"] = module.train_dataloader()
    assert loaders["cpu"].num_workers == 1  # this 2-core machine: one worker, as the CPU quickstart always had
    assert not loaders["cpu"].pin_memory and loaders["cuda"].pin_memory
    # training batches rounded to 8 px on a GPU (bounded shapes for cudnn.benchmark), never on CPU or in validation
    assert [loaders[d, "train"].collate_fn.pad_multiple for d in ("cpu", "cuda")] == [1, 8]
    assert [loaders[d].collate_fn.pad_multiple for d in ("cpu", "cuda")] == [1, 1]
    with pytest.raises(ValueError, match=r"^data.num_workers='many': expected an integer >= 0 \(or auto\)$"):
        TextDataModule(words, words, CHARSET, lambda w: w // 4 + 1, preprocess=PREPROCESS, batch_size=4,
                       eval_batch_size=4, num_workers="many", samples_per_epoch=None, seed=0)


@pytest.mark.parametrize(("cpus", "devices", "environment", "slurm_cpus", "workers"), [
    (2, 1, None, None, 1),  # this machine, one process
    (1, 1, None, None, 0),  # one CPU: the main process loads
    (2, 2, LightningEnvironment, None, 0),  # trainer=ddp_cpu here
    (96, 8, LightningEnvironment, None, 11),  # one node, Lightning starts 8 GPU processes
    (12, 8, SLURMEnvironment, "12", 11),  # a SLURM task bound to its 12 CPUs
    (96, 8, SLURMEnvironment, "12", 11),  # a SLURM task that sees the node's CPUs: its share is still 12
    (96, 8, LightningEnvironment, "96", 11),  # salloc -c 96, Lightning starts the 8 processes: they share the 96
    (224, 1, None, None, 12),  # a big machine, one process: capped (not 223)
    (224, 1, SLURMEnvironment, "32", 31),  # a SLURM task keeps every CPU it reserved
])
def test_auto_num_workers_arithmetic(monkeypatch, cpus, devices, environment, slurm_cpus, workers):
    from crnn_lit.data.datamodule import eval_workers

    assert [eval_workers(n) for n in (0, 1, 2, 11, 12)] == [0, 1, 1, 2, 3]  # validation: a quarter, at least 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    if slurm_cpus:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", slurm_cpus)
    strategy = SimpleNamespace(cluster_environment=environment()) if environment else SimpleNamespace()
    assert auto_num_workers(SimpleNamespace(num_devices=devices, strategy=strategy)) == workers
    if environment is None:
        assert auto_num_workers(None) == workers


def test_collate_rounds_the_padded_width_up_to_its_multiple():
    items = [Item(torch.zeros(1, 32, w), CHARSET.encode("ab"), "ab", str(w)) for w in (41, 43)]
    batch = Collate(lambda w: w // 4 + 1, pad_multiple=8)(items)
    assert batch.images.shape[-1] == 48 and batch.input_lengths.tolist() == [11, 11]  # each keeps its own frames
    assert batch.padding_waste == pytest.approx(1 - 84 / 96)
    assert Collate(lambda w: w // 4 + 1)(items).images.shape[-1] == 43


# --- no host sync inside the training step ------------------------------------------------------------------------
def test_the_training_step_reads_nothing_back_from_the_device(tmp_path, monkeypatch):
    """Counted inside training_step (runtime_helpers.CountHostSyncs): no .item()/.tolist()/.cpu()/float(tensor), no
    Python number logged, no prog_bar metric (Lightning reads those every step) — and the counter does see them:
    the step as it was before issue 33 (prog_bar loss, a float learning rate) counts 2 per step."""
    def run(name):
        out = tmp_path / f"{name}.json"
        cfg = compose_train([*FAST, "callbacks=none", "+callbacks.syncs._target_=runtime_helpers.CountHostSyncs",
                             f"+callbacks.syncs.out={out}"], tmp_path / name)
        train(cfg)
        return json.loads(out.read_text())

    now = run("now")
    assert now["steps"] == 4 and now["syncs"] == 0, now

    def old_step(self, batch, batch_idx):
        loss = self.loss(self(batch.images), batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(batch))
        return loss
    monkeypatch.setattr(CRNNSystem, "training_step", old_step)
    before = run("before")
    assert before["syncs"] == 2 * before["steps"] == 8, before


def test_a_batch_moved_to_a_device_keeps_its_lengths_on_the_cpu():
    """Lightning moves a Batch through Batch.to: images and targets go to the device, the CTC lengths (which
    torch's ctc_loss reads on the host) and widths stay ('meta' stands in for a GPU)."""
    batch = _batch(lambda w: w // 4 + 1)
    from lightning.fabric.utilities.apply_func import move_data_to_device

    moved = move_data_to_device(batch, torch.device("meta"))
    assert moved.images.device.type == moved.targets.device.type == "meta"
    assert {moved.input_lengths.device.type, moved.target_lengths.device.type, moved.widths.device.type} == {"cpu"}
    assert moved.labels == batch.labels and moved.input_lengths.tolist() == batch.input_lengths.tolist()
