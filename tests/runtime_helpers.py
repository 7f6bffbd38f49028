"""Test-only callbacks (added to a run with ``+callbacks.<name>._target_=runtime_helpers.<Class>``, tests/ on
PYTHONPATH), a submitit job that trains, and a reader for offline W&B run files."""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
from pathlib import Path

import lightning as L
from submitit.helpers import Checkpointable


class RecordKeys(L.Callback):
    """Appends the sample keys of every training batch to ``<out_dir>/keys_rank<global rank>.txt``."""

    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / f"keys_rank{trainer.global_rank}.txt", "a") as f:
            f.write(json.dumps({"epoch": trainer.current_epoch, "step": trainer.global_step,
                                "keys": list(batch.keys)}) + "\n")


class CrashAt(L.Callback):
    """Raises after optimizer step ``step`` (before any checkpoint of that step): a crash mid-run."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash after step {self.step}")


class SigtermAt(L.Callback):
    """Sends this process SIGTERM as optimizer step ``step`` + 1 starts (a preemption notice mid-epoch)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class RecordPrecision(L.Callback):
    """Writes ``<out_dir>/precision_rank<global rank>.json`` at the end of training: the trainer's precision, the
    dtype of the logits of every training step (a hook on the head) and the final step."""

    def __init__(self, out_dir: str):
        self.out_dir, self.dtypes, self.handle = Path(out_dir), [], None

    def on_train_start(self, trainer, pl_module) -> None:
        def record(module, inputs, output):
            if module.training:  # not validation
                self.dtypes.append(str(output.dtype))

        self.handle = pl_module.model.head.register_forward_hook(record)

    def on_train_end(self, trainer, pl_module) -> None:
        self.handle.remove()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"precision_rank{trainer.global_rank}.json").write_text(json.dumps(
            {"precision": trainer.precision, "logits": self.dtypes, "step": trainer.global_step}))


class RecordSaves(L.Callback):
    """Appends the global step of every checkpoint this rank takes part in to ``<out_dir>/saves_rank<rank>.txt``."""

    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / f"saves_rank{trainer.global_rank}.txt", "a") as f:
            f.write(f"{trainer.global_step}\n")


class TrainJob(Checkpointable):
    """A submitit job running ``python -m crnn_lit.train <overrides>`` in the job's process, as
    hydra-submitit-launcher's jobs do; ``checkpoint()`` resubmits it unchanged, as the launcher's does."""

    def __call__(self, overrides: list[str]) -> None:
        from crnn_lit.train import main

        sys.argv = ["crnn_lit.train", *overrides]
        main()


_BLOCK = 32 * 1024
_HEADER = 7  # crc32 (4) + length (2) + type (1); the file itself starts with ":W&B" + magic (2) + version (1)


def wandb_records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, chunk = 7, b""
    while pos + _HEADER <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _HEADER:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        if length == 0 and kind == 0:
            break
        chunk += data[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (1, 4):  # FULL or LAST fragment: one record complete
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def read_wandb_run(run_dir: Path) -> dict:
    """id, group, name, config (merged), history (key → last value) and artifacts of an offline run directory."""
    (run_file,) = Path(run_dir).glob("run-*.wandb")
    out = {"id": None, "group": None, "name": None, "config": {}, "history": {}, "artifacts": []}

    def merge(updates):
        for item in updates:
            key = item.key or "/".join(item.nested_key)
            out["config"][key] = json.loads(item.value_json)

    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(id=record.run.run_id, group=record.run.run_group, name=record.run.display_name)
            merge(record.run.config.update)
        elif kind == "config":
            merge(record.config.update)
        elif kind == "history":
            for item in record.history.item:  # the last value of each key
                out["history"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            out["artifacts"].append({"name": record.artifact.name, "type": record.artifact.type,
                                     "aliases": list(record.artifact.aliases),
                                     "files": [m.path for m in record.artifact.manifest.contents]})
    return out


class EpochAsMetric(L.Callback):
    """Logs ``val/epoch`` = the epoch number + 1 at each validation of fit: a monitored metric that improves at
    every validation, so each one names a new best checkpoint (ModelCheckpoint reads it after this callback)."""

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit":  # the final validate of the best checkpoint keeps fit's value
            pl_module.log("val/epoch", float(trainer.current_epoch + 1))


class CountHostSyncs(L.Callback):
    """Counts, inside ``training_step`` (the step's own code and what Lightning does in its ``self.log``), the calls
    that read a tensor back to the host — ``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()``, ``float()``/``int()``/
    ``bool()`` of a tensor — and the logs Lightning turns into one: a Python number (copied to the device) or
    ``prog_bar=True`` (read with ``.item()`` every step). On a GPU each is a host sync; here they are counted as
    calls, so no GPU is needed. Writes ``{"steps", "syncs", "calls"}`` to ``out`` when training ends."""

    READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")

    def __init__(self, out: str):
        import torch

        self.torch, self.out = torch, Path(out)
        self.calls: dict[str, int] = {}
        self.steps, self.inside, self._saved = 0, False, {}

    def _count(self, what: str) -> None:
        if self.inside:
            self.calls[what] = self.calls.get(what, 0) + 1

    def on_train_start(self, trainer, pl_module) -> None:
        tensor = self.torch.Tensor
        for name in self.READS:
            original = self._saved[name] = getattr(tensor, name)

            def read(t, *args, _name=name, _original=original, **kwargs):
                self._count(f".{_name}")
                return _original(t, *args, **kwargs)
            setattr(tensor, name, read)
        step, log = pl_module.training_step, pl_module.log

        def training_step(*args, **kwargs):
            self.inside, self.steps = True, self.steps + 1
            try:
                return step(*args, **kwargs)
            finally:
                self.inside = False

        def logged(name, value, *args, prog_bar=False, **kwargs):
            if isinstance(value, (int, float)):
                self._count("log of a Python number")
            if prog_bar and kwargs.get("on_step", True) is not False:
                self._count("log with prog_bar (read every step)")
            return log(name, value, *args, prog_bar=prog_bar, **kwargs)  # its reads count too
        pl_module.training_step, pl_module.log = training_step, logged

    def on_train_end(self, trainer, pl_module) -> None:
        for name, original in self._saved.items():
            setattr(self.torch.Tensor, name, original)
        del pl_module.training_step, pl_module.log
        self.out.write_text(json.dumps({"steps": self.steps, "syncs": sum(self.calls.values()), "calls": self.calls}))


class SigtermInValidate(L.Callback):
    """Sends this process SIGTERM when the validation of the best checkpoint after ``fit`` starts."""

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            os.kill(os.getpid(), signal.SIGTERM)
