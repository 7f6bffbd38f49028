"""Running a trained model on images: preprocessing, width-batched inference, torch or ONNX Runtime back ends.

Shared by ``evaluate``, ``predict`` and the exported model's post-processing, so the three always agree:
the same preprocessing (from the checkpoint's config), the same batching, the same decoders.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby, islice
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from crnn_lit.charset import Charset
from crnn_lit.checkpoint import CheckpointError
from crnn_lit.data.batching import Batch, Collate
from crnn_lit.data.dataset import Item
from crnn_lit.preprocess import Preprocess
from crnn_lit.reading.threads import ThreadPolicy, probe_free_cores

T = TypeVar("T")


def bound_kernel_cache() -> None:
    """Keep no compiled convolution per input shape: oneDNN (behind PyTorch's CPU convolutions) caches a primitive,
    with its buffers, for each shape it meets, up to 1,024 of them, and reading images meets a new (batch size,
    width) at almost every batch — so memory grew with the number of images read (real_train's 6,725 crops: peak
    0.78 → 0.47 GB without the cache, and no slower: bench/results/predict_memory.json). oneDNN reads the setting
    at its first convolution, so the entry points that only read images (predict, evaluate) set it first; a Python
    process can set ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0`` itself (a value already set is kept)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last one shorter): inference decodes, width-batches and reads one
    chunk before it touches the next, so memory holds ``size`` images, not all of them. Readings do not change:
    each image is padded on its own (``width_batches``), whatever it is batched with. ``size`` >= 1 (the caller's
    ``chunk_size``, checked where it enters: ``Recognizer.KNOBS``)."""
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


@dataclass
class Recognized:
    """The model's output for one batch: log-probs (T, N, C) and each image's own frame count."""

    log_probs: torch.Tensor
    lengths: torch.Tensor
    keys: list[str]
    labels: list[str]


def width_batches(images: Sequence[torch.Tensor], batch_size: int, keys: Sequence[str],
                  labels: Sequence[str] | None = None, *, output_length: Callable[[int], int],
                  width_multiple: int) -> Iterator[Batch]:
    """Batches of preprocessed images, widest first, each image right-padded to the next multiple of
    ``width_multiple`` (``preprocess.width_multiple``) and a batch holding one such width: an image reads the same
    alone or in any batch. (Padding every image to its batch's widest changed 101 of the 686 real_train hold-out
    readings of cpu_scene_text.pt against one image at a time: the padding reaches the CNN's features at a word's
    right edge.) Widest first, the network's largest buffers are allocated first and the narrower batches reuse
    them: narrowest first grew the heap batch by batch (reading real_train's 6,725 crops peaked 0.18 GB higher).
    ``output_length`` is the model's width → frame count (``backend.output_length``)."""
    labels = labels if labels is not None else [""] * len(images)
    collate = Collate(output_length)

    def padded(i: int) -> int:
        return -(-images[i].shape[-1] // width_multiple) * width_multiple

    # stable, also reversed: input order kept within a width
    for width, same in groupby(sorted(range(len(images)), key=padded, reverse=True), key=padded):
        same = list(same)
        for start in range(0, len(same), batch_size):
            yield collate([Item(images[j], [], labels[j], keys[j]) for j in same[start:start + batch_size]], width)


def torch_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device (None: the CPU), or a one-line error when this machine has no such device."""
    try:
        device = torch.device(device or "cpu")
    except RuntimeError as err:
        raise CheckpointError(f"device={device!r} is not a device torch knows ({err}); use cpu, cuda or cuda:<i>") \
            from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"device={device} but torch sees no CUDA GPU here (torch {torch.__version__}, "
                              f"built {'with' if torch.version.cuda else 'without'} CUDA); use device=cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CheckpointError(f"device={device} but torch sees {torch.cuda.device_count()} GPU(s)")
    if device.type not in ("cpu", "cuda"):
        raise CheckpointError(f"device={device}: reading runs on cpu or cuda")
    return device


class TorchBackend:
    """Logits from a torch CRNN (eval mode, no grad) on ``device``; on the CPU with ``threads`` intra-op threads
    (None: ``ThreadPolicy``'s, the cores other processes leave free)."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device | None = None, threads: int | None = None):
        self.device = torch_device(device)
        self.model = model.eval().to(self.device)
        self.output_length = model.output_length
        self.frame_width = model.output_length_spec()["stride"]  # input pixels per frame (too_narrow)
        self.threads = ThreadPolicy(threads)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.threads.applied():
            return self.model(images.to(self.device)).cpu()


class Exported:
    """What an exported model's sidecar (``<file>.json``, written by ``crnn_lit.export``) tells a reader: the
    charset, the preprocessing and the frame count."""

    def __init__(self, path: str | Path):
        sidecar_path = Path(str(path) + ".json")
        if not sidecar_path.is_file():
            raise CheckpointError(f"{path} has no sidecar: expected {sidecar_path} beside it (charset, preprocessing "
                                  "and frame count, written by crnn_lit.export with the model)")
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
            self.charset = Charset.from_dict(sidecar["charset"])
            self.preprocess = Preprocess.from_record(sidecar["preprocess"])
            spec = sidecar["output_length"]
            self._stride, self._offset = int(spec["stride"]), int(spec["offset"])
            self._pad = int(spec.get("pad", 0))  # written by backbones whose strided convs round up (PPLCNetV4)
            self._rectified = spec.get("rectified_width")  # a fixed-size TPS stage: T no longer follows the input
            self.reading = sidecar.get("reading")  # the model's default decoding (older sidecars: none)
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{sidecar_path} is not a crnn_lit export sidecar ({type(err).__name__}: "
                                  f"{err}); re-export the model with crnn_lit.export") from None
        self.frame_width = self._stride  # input pixels per frame (too_narrow)

    def output_length(self, width: int) -> int:
        """Frames for an input ``width``, from the sidecar's formula (written from the model at export)."""
        return ((self._rectified or width) + self._pad) // self._stride + self._offset


class OnnxBackend(Exported):
    """Logits from an exported ONNX model (onnxruntime), with its sidecar's charset and preprocessing; ``device``
    cuda runs it with the CUDA execution provider (onnxruntime-gpu). A session's thread count is fixed when it is
    made: ``threads`` None takes the cores other processes leave free then (one window of
    ``ThreadPolicy``), and its threads sleep instead of spinning when idle, so a
    machine that gets busier later slows it less."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or probe_free_cores()
        if threads is None:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        try:
            parsed = torch.device(device or "cpu")
        except RuntimeError as err:
            raise CheckpointError(f"device={device!r} is not a device ({err}); use cpu, cuda or cuda:<i>") from None
        if parsed.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise CheckpointError(f"device={device} but onnxruntime has no CUDA provider here (providers: "
                                      f"{', '.join(ort.get_available_providers())}): install onnxruntime-gpu, or "
                                      "use device=cpu")
            providers = [("CUDAExecutionProvider", {"device_id": parsed.index or 0}), "CPUExecutionProvider"]
        elif parsed.type != "cpu":
            raise CheckpointError(f"device={device}: reading runs on cpu or cuda")
        self.device = parsed.type
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # noqa: BLE001 — onnxruntime's own types (InvalidProtobuf, Fail, …)
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path} is not a usable ONNX model: {reason}") from None
        self.input_name = self.session.get_inputs()[0].name
        super().__init__(path)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(None, {self.input_name: images.numpy().astype(np.float32)})
        return torch.from_numpy(out)


def is_torchscript(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``: a zip holding the model's ``code/``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


class TorchScriptBackend(Exported):
    """Logits from a TorchScript export (``crnn_lit.export format=torchscript``) and its sidecar, on ``device`` with
    ``threads`` as ``TorchBackend``."""

    def __init__(self, path: str | Path, device: str | torch.device | None = None, threads: int | None = None):
        super().__init__(path)  # the sidecar first: without it the file cannot be read
        self.device = torch_device(device)
        try:
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        except RuntimeError as err:
            raise CheckpointError(f"{path} is not a usable TorchScript model: {str(err).strip().splitlines()[0]}") \
                from None
        self.threads = ThreadPolicy(threads)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.threads.applied():
            return self.model(images.to(self.device)).cpu()


@dataclass
class Timing:
    images: int = 0
    seconds: float = 0.0
    per_batch: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


def recognize(backend, batches: Iterator[Batch], timing: Timing | None = None) -> Iterator[Recognized]:
    """Log-probs for every batch; ``timing`` accumulates the network time (forward + log-softmax)."""
    for batch in batches:
        if not len(batch):
            continue
        start = time.perf_counter()
        log_probs = backend.logits(batch.images).float().log_softmax(2)
        if timing is not None:
            timing.seconds += time.perf_counter() - start
            timing.images += len(batch)
        yield Recognized(log_probs, batch.input_lengths, batch.keys, batch.labels)


def window_spans(width: int, window: int, overlap: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) pixel spans covering ``width`` with windows ``window`` wide overlapping by at least
    ``overlap``, every start a multiple of the frame ``stride`` (so a window's frames fall on the full image's);
    the last one ends at ``width``, up to one stride wider than ``window``."""
    if width <= window:
        return [(0, width)]
    step = max((window - overlap) // stride * stride, stride)
    last = (width - window) // stride * stride
    return [(start, start + window) for start in range(0, last, step)] + [(last, width)]


def stitch(log_probs: Sequence[torch.Tensor], spans: Sequence[tuple[int, int]], stride: int) -> torch.Tensor:
    """One (T, C) posterior from the windows' (T_k, C) ones: frame t of the window starting at pixel s is frame
    s / stride + t of the whole crop, and each overlap is cut in its middle, where both windows see the most
    context on either side (a frame's reading depends on its neighbours: the CNN's receptive field, the RNN)."""
    pieces, frame = [], 0  # frame: the next global frame to fill
    for k, (part, (start, end)) in enumerate(zip(log_probs, spans)):
        first = start // stride
        stop = first + len(part) if k == len(spans) - 1 else (spans[k + 1][0] + (end - spans[k + 1][0]) // 2) // stride
        pieces.append(part[frame - first: stop - first])
        frame = stop
    return torch.cat(pieces)


def read_windowed(backend, image: torch.Tensor, key: str, label: str, *, window: int, overlap: int,
                  width_multiple: int, timing: Timing | None = None) -> Recognized:
    """The frame log-probabilities of one crop wider than ``window``: read in overlapping windows
    (``window_spans``) and merged (``stitch``), so memory is bounded by the window, not by the line."""
    stride = backend.frame_width
    spans = window_spans(image.shape[-1], window, overlap, stride)
    parts = [image[..., start:end] for start, end in spans]
    names = [str(k) for k in range(len(parts))]
    read: dict[str, torch.Tensor] = {}
    for r in recognize(backend, width_batches(parts, len(parts), names, output_length=backend.output_length,
                                              width_multiple=width_multiple), timing):
        for n, name in enumerate(r.keys):
            read[name] = r.log_probs[: int(r.lengths[n]), n]
    if timing is not None:
        timing.images += 1 - len(parts)  # one crop read, not its windows
    merged = stitch([read[name] for name in names], spans, stride)
    return Recognized(merged.unsqueeze(1), torch.tensor([len(merged)]), [key], [label])


class TurnTall:
    """Preprocessing that also reads vertical and sideways text: a crop at least ``min_aspect`` times taller than
    wide is read as given and turned a quarter left and right, and the orientation whose best path has the
    highest mean log-probability per frame is kept (per frame: a turned crop gives more frames, and a path's
    total log-probability falls with its length). Every other crop is only preprocessed. ``turned`` counts the
    crops read turned. Off by default (``turn_tall: null``): the benchmarks' protocol reads crops as given."""

    def __init__(self, backend, preprocess: Preprocess, min_aspect: float):  # min_aspect >= 1: Recognizer.KNOBS
        self.backend, self.preprocess, self.min_aspect = backend, preprocess, min_aspect
        self.turned = 0

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        tensor = self.preprocess(image)
        height, width = image.shape[:2]
        if height < self.min_aspect * width:
            return tensor
        candidates = [tensor] + [self.preprocess(np.ascontiguousarray(np.rot90(image, k))) for k in (1, 3)]
        scores = [self._mean_frame_log_prob(t) for t in candidates]
        best = max(range(len(candidates)), key=scores.__getitem__)
        self.turned += best != 0
        return candidates[best]

    def _mean_frame_log_prob(self, tensor: torch.Tensor) -> float:
        """The crop's best path log-probability per frame, read alone (as in any batch: width_batches)."""
        (batch,) = width_batches([tensor], 1, [""], output_length=self.backend.output_length,
                                 width_multiple=self.preprocess.width_multiple)
        (r,) = recognize(self.backend, iter([batch]))
        return r.log_probs[: int(r.lengths[0]), 0].max(-1).values.mean().item()


def too_narrow(width: int, height: int, preprocess: Preprocess, frame: float, turn_tall: float | None) -> str | None:
    """Why a ``width``×``height`` crop cannot be read as given, or None: scaled to the model's height it is narrower
    than one CTC frame (``frame`` pixels), so no character fits in it — what the network sees is the crop stretched
    to ``min_width``, and its reading is noise (vertical words such as a 17×211 "RESTAURANT" read ``s``). A crop
    ``turn_tall`` also reads turned is not: that reading is compared too."""
    if turn_tall and height >= turn_tall * width:
        return None
    scaled = width * preprocess.height / max(height, 1)
    if scaled >= frame:
        return None
    return (f"{width}×{height} is {scaled:.2g} px wide at the model's height {preprocess.height}, less than one CTC "
            f"frame ({frame:g} px); vertical text reads with turn_tall=1.5")


def squeezed(width: int, height: int, preprocess: Preprocess) -> bool:
    """Whether a ``width``×``height`` crop is squeezed to ``preprocess.max_width`` (wider at the model's height)."""
    return (preprocess.width_policy != "fixed" and preprocess.max_width is not None
            and round(width * preprocess.height / max(height, 1)) > preprocess.max_width)


def squeeze_warning(count: int, total: int, preprocess: Preprocess, keys: Sequence[str]) -> str:
    """The one line saying how many crops were read squeezed, and how to read them at their own width."""
    return (f"{count} of {total} crops are wider than the model's max_width ({preprocess.max_width} px at height "
            f"{preprocess.height}) and were read squeezed to it, as it was trained ({', '.join(keys[:3])}"
            f"{', …' if count > 3 else ''}); window={preprocess.max_width} reads them at their own width, in "
            "overlapping windows (lines: docs/lines.md)")


def reading_preprocess(backend, preprocess: Preprocess, turn_tall: float | None) -> Preprocess | TurnTall:
    """What turns an image into the network's input: the model's preprocessing, in a ``TurnTall`` when
    ``turn_tall`` is set (conf/predict.yaml)."""
    return TurnTall(backend, preprocess, turn_tall) if turn_tall else preprocess
