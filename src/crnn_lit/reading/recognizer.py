"""The Python API: ``Recognizer.from_pretrained().read(images) → [Prediction(text, confidence)]``.

One object for reading word images: the model (a crnn_lit checkpoint or an exported ``.onnx``), its own
preprocessing, width batching, a decoder (by name: ``crnn_lit.transcription.presets``), and the results in input
order. Every reader goes through it: ``python -m crnn_lit.predict`` is this class behind a Hydra command line (so
the two always print the same text), ``evaluate`` and the bench scripts read frame posteriors with
``Recognizer.recognize``. Its defaults are Python's; reading imports no Hydra module and leaves a caller's
Hydra state alone.
"""

from __future__ import annotations

import glob
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from crnn_lit.charset import Charset
from crnn_lit.checkpoint import CheckpointError, load_model
from crnn_lit.data.sample import BadSample
from crnn_lit.data.sources.image_io import IMAGE_SUFFIXES, decode_image, image_array
from crnn_lit.knobs import SIZE, Knob, Knobs, check
from crnn_lit.paths import PRETRAINED_SUFFIXES, ConfigError, find_asset, resolve_ckpt
from crnn_lit.preprocess import Preprocess
from crnn_lit.reading.inference import (
    OnnxBackend,
    Recognized,
    Timing,
    TorchBackend,
    TorchScriptBackend,
    chunked,
    is_torchscript,
    read_windowed,
    reading_preprocess,
    recognize,
    squeeze_warning,
    squeezed,
    too_narrow,
    width_batches,
)
from crnn_lit.transcription import Decoder
from crnn_lit.transcription.ctc import forced_alignment
from crnn_lit.transcription.lexicon import Lexicon
from crnn_lit.transcription.presets import MODEL_DECODING, ModelDecoding
from crnn_lit.transcription.presets import decoder as named_decoder

log = logging.getLogger(__name__)
# an image file, a folder (recursive) or a glob; a PIL image; a uint8 H×W or H×W×{3,4} RGB(A) array
ImageInput = str | Path | Image.Image | np.ndarray
# a decoder by name (crnn_lit.transcription.presets: greedy, beam, beam_lm, lexicon, lexicon_lm), or what builds
# one for the model's charset (a Hydra partial from conf/decoder, functools.partial(BeamDecoder, beam_width=5), ...)
DecoderSpec = str | Callable[..., Decoder]


@dataclass(frozen=True)
class Char:
    """One character of a reading: where it is and how sure the network is of it. From the most probable CTC
    path that reads the returned text (``transcription.ctc.forced_alignment``; for greedy decoding, the best path
    itself): ``confidence`` is the highest probability the network gives this character in any of the frames the
    path spends on it; ``left``/``right`` are those frames' extent (frame t covers ``[t, t + 1) × stride`` network
    pixels), scaled to the input image's pixels, and ``x`` their centre. Along the image as read (a tall crop that
    ``turn_tall`` read turned: along the turned image). CTC places a character where its probability spikes,
    usually within a glyph of its centre, not at its edges: on clean printed words the shipped model's spikes were
    within 10 px of each glyph's centre at 56 px height except the first character's, which it emits at the first
    frame (tests/test_recognizer.py). Use them to order, highlight or roughly locate characters, not to crop."""

    char: str
    confidence: float
    x: float
    left: float
    right: float


@dataclass(frozen=True)
class Prediction:
    """What was read in one image; an unreadable one has ``error`` set (then text "" and confidence 0).

    ``confidence`` is the decoder's probability of the returned text given the image, p(text|y) under the
    network's frame posteriors, not a calibrated chance of being right: greedy, the best path's probability
    (the product of each frame's top probability); beam and beam + LM, p(text|y) summed over the alignments the
    search kept (a lower bound of the exact sum; the LM ranks the beam but is not in this number); lexicon,
    p(word|y) by the CTC forward algorithm (or the lexicon-free reading's, when the open test keeps that). It
    ranks readings well (the most confident are the most often right) but its value is not a frequency of
    success: with beam + LM, readings scored 0.01–0.1 were right 42 % of the time in a user's test.
    ``chars``: each character's confidence and position ([`Char`][crnn_lit.reading.recognizer.Char]), empty when unread or when the text
    cannot be aligned in the image's frames. ``alternatives``: a beam decoder's final beam, the returned text
    first, ``(text, p(text|y))`` each, in the search's order (LM included); empty for other decoders."""

    text: str
    confidence: float  # p(text | image) under the decoder, in [0, 1] (see above)
    # which input: a file's path (as given; a folder's files as <folder>/<path inside it>; a glob's as matched), or
    # "#<i>" for an in-memory image, i its position in the list (keyed_inputs)
    image: str = ""
    error: str | None = None
    chars: tuple[Char, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()


class Recognizer:
    """Reads word images with one model and one decoder. Build it with [`from_pretrained`][crnn_lit.reading.recognizer.Recognizer.from_pretrained],
    [`from_checkpoint`][crnn_lit.reading.recognizer.Recognizer.from_checkpoint] (a checkpoint or ``.onnx`` file) or [`from_config`][crnn_lit.reading.recognizer.Recognizer.from_config] (a composed predict config)."""

    # the reading settings' types and ranges (conf/predict.yaml's, checked there before any work: crnn_lit.knobs)
    KNOBS: ClassVar[Knobs] = {"batch_size": SIZE, "chunk_size": SIZE, "turn_tall": Knob(float, 1, optional=True),
                              "window": Knob(int, 1, optional=True), "threads": Knob(int, 1, optional=True)}

    def __init__(self, backend: TorchBackend | OnnxBackend, preprocess: Preprocess, decoder: Decoder,
                 batch_size: int, chunk_size: int, turn_tall: float | None = None, window: int | None = None,
                 window_overlap: int = 128):
        check(self.KNOBS, batch_size=batch_size, chunk_size=chunk_size, turn_tall=turn_tall, window=window)
        # A model is read as it was trained: one trained with a max_width (every word model) reads a wider crop
        # squeezed to it, counted and warned (inference.squeezed); with `window` set, or a model trained on lines
        # (max_width null), every crop is read at its own width, T growing with W. (Reading the word benchmarks'
        # crops wider than 400 px whole changed shipped models' readings; a 1,500-px line squeezed is garbage.)
        if window is not None and preprocess.width_policy != "fixed":
            preprocess = preprocess.replace(max_width=None)
        self.backend, self.preprocess, self.decoder, self.batch_size = backend, preprocess, decoder, batch_size
        self.charset: Charset = decoder.charset
        self.chunk_size = chunk_size  # inputs decoded and held at once (iter_read)
        # network inputs wider than `window` px are read in windows overlapping by `window_overlap` px and their
        # frame posteriors merged (inference.read_windowed): memory bounded by the window, not the line
        if window is not None and window <= window_overlap + backend.frame_width:
            raise ValueError(f"window={window} must exceed window_overlap={window_overlap} by at least one frame")
        self.window, self.window_overlap = window, window_overlap
        # image → network input: the model's preprocessing; crops at least `turn_tall` times taller than wide are
        # also read turned ±90° (inference.TurnTall, which counts them: prepare.turned)
        self.prepare = reading_preprocess(backend, preprocess, turn_tall)
        self._turn_tall, self._frame = turn_tall, backend.frame_width
        lexicon = getattr(decoder, "lexicon", None)  # per-image word lists are looked up by each image's key
        self._per_image = lexicon if lexicon is not None and lexicon.is_per_image else None

    @classmethod
    def from_checkpoint(cls, path: str | Path, decoder: DecoderSpec = "model",
                        decoder_options: Mapping[str, Any] | None = None, batch_size: int = 64,
                        chunk_size: int = 8192, turn_tall: float | None = None, window: int | None = None,
                        threads: int | None = None, device: str | None = None) -> Recognizer:
        """A crnn_lit checkpoint (``.pt``/``.ckpt``), or a model ``crnn_lit.export`` wrote (``.onnx``, read with
        onnxruntime, or TorchScript), its ``.json`` sidecar beside it.

        ``decoder``: ``model`` (the default: the decoding recorded with the model, chosen for it on the real_train
        hold-out — ``crnn_lit.checkpoint`` —, else beam_lm), a name (greedy, beam, beam_lm — beam search with the
        shipped LM at the presets' weights —, lexicon) or a callable building one for the model's charset;
        ``decoder_options`` replace its
        settings (values may be objects, e.g. a ``Lexicon``; ``lexicon`` also takes a list of words or a word-list
        file). ``batch_size``: images per forward pass; ``chunk_size``: inputs decoded and held at once
        ([`iter_read`][crnn_lit.reading.recognizer.Recognizer.iter_read]); ``turn_tall``: a crop at least this many times taller than wide is also read turned
        ±90° and the most confident orientation kept (1.5 was chosen on the real_train hold-out; None: never);
        ``window``: network inputs wider than this many pixels are read in overlapping windows whose frame
        posteriors are merged, a bound on memory (None: every crop whole, at its own width);
        ``threads``: CPU threads per forward pass (None: the cores other processes leave free, re-measured as it
        reads, at most torch's count: ``crnn_lit.reading.threads``); ``device``: ``cpu`` (None) or ``cuda[:i]``
        (torch; an ``.onnx`` runs with onnxruntime-gpu's CUDA provider)."""
        check(cls.KNOBS, batch_size=batch_size, chunk_size=chunk_size, turn_tall=turn_tall, window=window,
              threads=threads)
        path = str(path)
        if path.endswith(".onnx"):
            if not Path(path).is_file():
                raise CheckpointError(f"ONNX model not found: {path}")
            backend = OnnxBackend(path, threads, device)
            charset, preprocess, reading = backend.charset, backend.preprocess, backend.reading
        elif is_torchscript(path):
            backend = TorchScriptBackend(path, device, threads)
            charset, preprocess, reading = backend.charset, backend.preprocess, backend.reading
        else:
            loaded = load_model(path)
            backend, charset = TorchBackend(loaded.model, device, threads), loaded.charset
            preprocess, reading = Preprocess.from_record(loaded.config), loaded.reading
        options = dict(decoder_options or {})
        if isinstance(decoder, str) and decoder == MODEL_DECODING:
            decoder = ModelDecoding()
        if isinstance(decoder, ModelDecoding):  # the model's own decoding (its record's), else beam_lm as named
            settings = dict(reading or {"decoder": "beam_lm"})
            decoder, options = settings.pop("decoder"), {**settings, **decoder.options, **options}
        if isinstance(options.get("lexicon"), (str, Path, list, tuple)):  # a word list file, or the words themselves
            words = options["lexicon"]
            options["lexicon"] = Lexicon(words=list(words)) if isinstance(words, (list, tuple)) else \
                Lexicon.from_file(words)
        built = named_decoder(decoder, charset, **options) if isinstance(decoder, str) else decoder(charset, **options)
        return cls(backend, preprocess, built, batch_size, chunk_size, turn_tall, window)

    @classmethod
    def from_pretrained(cls, name: str = "ppocr_v6_small", decoder: DecoderSpec = "model",
                        decoder_options: Mapping[str, Any] | None = None, batch_size: int = 64,
                        chunk_size: int = 8192, turn_tall: float | None = None, window: int | None = None,
                        threads: int | None = None, device: str | None = None) -> Recognizer:
        """A shipped model by name (``data/pretrained/<name>.onnx`` where shipped, read by onnxruntime, else
        ``<name>.pt``): ``ppocr_v6_small`` (the default: PP-OCRv6
        small imported exactly, Apache-2.0, reading words and lines with case and punctuation), ``cpu_scene_text``
        (the CRNN trained here on two CPU cores, lowercase words), quickstart_synthetic, real_finetune,
        synthetic_only; the rest as [`from_checkpoint`][crnn_lit.reading.recognizer.Recognizer.from_checkpoint]."""
        path = find_asset(name, "pretrained", "pretrained model", suffixes=PRETRAINED_SUFFIXES["reading"])
        return cls.from_checkpoint(path, decoder, decoder_options, batch_size, chunk_size, turn_tall, window, threads,
                                   device)

    @classmethod
    def from_config(cls, cfg, decoder_options: Mapping[str, Any] | None = None) -> Recognizer:
        """From a composed conf/predict.yaml (``ckpt``/``pretrained``, the ``decoder`` node — conf/decoder or your
        own —, ``batch_size``, ``chunk_size``, ``turn_tall``, ``threads``, ``device``): the command line's way
        in."""
        from hydra.utils import instantiate

        return cls.from_checkpoint(resolve_ckpt(cfg), instantiate(cfg.decoder), decoder_options, cfg.batch_size,
                                   cfg.chunk_size, cfg.get("turn_tall"), cfg.get("window"), cfg.get("threads"),
                                   cfg.get("device"))

    def read(self, images: ImageInput | Iterable[ImageInput]) -> list[Prediction]:
        """One ``Prediction`` per image, in input order (a folder's files sorted by path), an image given twice read
        twice; ``Prediction.image`` names it (``keyed_inputs``). Images are batched by
        width; one that cannot be read (corrupt file, wrong array type, narrower than one CTC frame at the model's
        height) is logged and returned with ``error``."""
        return list(self.iter_read(images))

    def iter_read(self, images: ImageInput | Iterable[ImageInput], chunk_size: int | None = None
                  ) -> Iterator[Prediction]:
        """[`read`][crnn_lit.reading.recognizer.Recognizer.read] as a stream, for any number of images in bounded memory: ``chunk_size`` inputs at a time
        (None = the one this recognizer was built with, conf/predict.yaml's ``chunk_size``) are decoded, batched
        by width and read before the next are touched; predictions come in input order, the same as
        [`read`][crnn_lit.reading.recognizer.Recognizer.read]'s (each image is padded on its own, so its batch never changes its reading). An iterator
        of images is consumed as the predictions are. Memory stays flat in a process that sets
        ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0`` before its first convolution, as predict and evaluate do
        (``inference.bound_kernel_cache``)."""
        return self.iter_keyed(keyed_inputs(images), chunk_size)

    def iter_keyed(self, inputs: Iterable[tuple[str, ImageInput]], chunk_size: int | None = None
                   ) -> Iterator[Prediction]:
        """[`iter_read`][crnn_lit.reading.recognizer.Recognizer.iter_read] of ``(key, image)`` pairs (``keyed_inputs``); ``key`` names each prediction."""
        check(self.KNOBS, chunk_size=chunk_size or self.chunk_size)
        for chunk in chunked(inputs, chunk_size or self.chunk_size):
            yield from self._read_chunk(chunk)

    def _read_chunk(self, inputs: list[tuple[str, Any]]) -> list[Prediction]:
        # images are tracked by position, not by key: the same input given twice is read (and returned) twice
        tensors, positions, predictions, wide = [], [], [None] * len(inputs), []
        scale: dict[str, float] = {}  # input pixels per network pixel, along the width
        for i, (key, image) in enumerate(inputs):
            try:
                array = decode_image(image, key) if isinstance(image, Path) else image_array(image, key)
                narrow = too_narrow(array.shape[1], array.shape[0], self.preprocess, self._frame, self._turn_tall)
                if narrow:
                    raise BadSample("too_narrow", key, narrow)
                if squeezed(array.shape[1], array.shape[0], self.preprocess):
                    wide.append(key)
                tensors.append(self.prepare(array))
                positions.append(str(i))
                scale[str(i)] = self._scale(array.shape[:2], tensors[-1].shape[-2:])
            except BadSample as err:
                detail = f"{err.reason} ({err.detail})" if err.detail else err.reason
                predictions[i] = Prediction("", 0.0, key, detail)
                log.warning("cannot read %s (%s); skipped", key, err.reason)
        if wide:
            log.warning(squeeze_warning(len(wide), len(inputs), self.preprocess, wide))
        for r in self.recognize(tensors, positions):
            keys = [inputs[int(i)][0] for i in r.keys]
            lexicons = self._per_image.lists_for(keys) if self._per_image is not None else None
            decoded = self.decoder.decode(r.log_probs, r.lengths, lexicons=lexicons)
            spans = forced_alignment(r.log_probs, r.lengths, [self._classes(p.text) for p in decoded])
            for i, p, span in zip(r.keys, decoded, spans):
                chars = () if span is None else tuple(self._char(c, *s, scale[i]) for c, s in zip(p.text, span))
                predictions[int(i)] = Prediction(p.text, float(p.confidence), inputs[int(i)][0], chars=chars,
                                                 alternatives=p.alternatives)
        return predictions  # input order, not width order

    def _scale(self, size: tuple[int, int], net: tuple[int, int]) -> float:
        """Input pixels per network pixel along the read direction: the width's, or the height's for a crop
        ``turn_tall`` read turned (its network input is as long as its height, not its width)."""
        (h, w), (net_h, net_w) = size, net
        if self._turn_tall and h >= self._turn_tall * w:
            aspect = math.log(net_w / net_h)
            if abs(aspect - math.log(h / w)) < abs(aspect - math.log(w / h)):
                return h / net_w
        return w / net_w

    def _classes(self, text: str) -> list[int]:
        try:
            return self.charset.encode(text)
        except ValueError:  # a decoder's word outside the charset (cannot happen with ours): no positions
            return []

    def _char(self, char: str, first: int, last: int, log_prob: float, scale: float) -> Char:
        left, right = first * self._frame * scale, (last + 1) * self._frame * scale
        return Char(char, math.exp(log_prob), (left + right) / 2, left, right)

    def recognize(self, images: Sequence[torch.Tensor], keys: Sequence[str], labels: Sequence[str] | None = None,
                  timing: Timing | None = None) -> Iterator[Recognized]:
        """The network's frame log-probabilities for network inputs (``prepare``'s), batched by width as
        [`read`][crnn_lit.reading.recognizer.Recognizer.read] batches them, each batch with its images' keys and ``labels``; ``timing`` accumulates the
        network time. What [`read`][crnn_lit.reading.recognizer.Recognizer.read] decodes, and what evaluate and the bench scripts read."""
        labels = labels if labels is not None else [""] * len(images)
        long = [] if self.window is None else [i for i, image in enumerate(images) if image.shape[-1] > self.window]
        short = sorted(set(range(len(images))) - set(long))
        batches = width_batches([images[i] for i in short], self.batch_size, [keys[i] for i in short],
                                [labels[i] for i in short], output_length=self.backend.output_length,
                                width_multiple=self.preprocess.width_multiple)
        yield from recognize(self.backend, batches, timing)
        for i in long:  # the lines wider than the window, one at a time
            yield read_windowed(self.backend, images[i], keys[i], labels[i], window=self.window,
                                overlap=self.window_overlap, width_multiple=self.preprocess.width_multiple,
                                timing=timing)

    def prepare_source(self, source, indices: Iterable[int] | None = None):
        """Network inputs, keys and raw labels of every readable sample of a labelled source (a dataset:
        ``source[i]`` → Sample; or of its samples ``indices``), read as given (evaluate's protocol: narrow crops
        too); the unreadable ones apart, as ``(key, label, reason)``."""
        images, keys, labels, unreadable = [], [], [], []
        for i in range(len(source)) if indices is None else indices:
            try:
                sample = source[i]
            except BadSample as err:
                unreadable.append((err.key, source.label(i), err.reason))
                continue
            images.append(self.prepare(sample.image))
            keys.append(sample.key)
            labels.append(sample.label)
        return images, keys, labels, unreadable

    def source_logits(self, source) -> list[Recognized]:
        """[`recognize`][crnn_lit.reading.recognizer.Recognizer.recognize] of every readable sample of a labelled source (calibration scripts tune decoders on
        these; unreadable samples are left out)."""
        images, keys, labels, _ = self.prepare_source(source)
        return list(self.recognize(images, keys, labels))


def keyed_inputs(images: ImageInput | Iterable[ImageInput]) -> Iterator[tuple[str, Any]]:
    """(name, file path or in-memory image) of every input, lazily (an iterator of images is not held), each input
    once per time it is given. The name (``Prediction.image``) is the file's path: the path as given for a file,
    the folder's path joined with the file's path inside it for a folder (searched recursively, files sorted), the
    matched path for a glob; ``#<i>`` for an in-memory image, ``i`` its position in the list (``#0`` alone)."""
    if isinstance(images, (str, Path, Image.Image, np.ndarray)):
        images = [images]
    for i, item in enumerate(images):
        if isinstance(item, (str, Path)):
            yield from ((key, path) for path, key in find_images(str(item)))
        else:
            yield f"#{i}", item


def find_images(inputs: str) -> list[tuple[Path, str]]:
    """(path, name) of the image files of a file (its name: ``inputs`` as given), a folder (recursive, sorted) or a
    glob."""
    path = Path(inputs)
    if path.is_file():
        return [(path, inputs)]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(inputs, recursive=True) if Path(p).is_file())
        if not files:
            raise ConfigError(f"inputs={inputs!r} is not a file, a folder or a glob that matches any file")
    return [(p, str(p)) for p in files]
