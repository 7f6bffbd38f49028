"""The Python API: ``Recognizer.from_pretrained("cpu_scene_text").read(images) → [Prediction(text, confidence)]``.

One object for reading word images: the model (a crnn_lit checkpoint or an exported ``.onnx``), its own
preprocessing, width batching, a decoder from conf/decoder, and the results in input order. ``python -m
crnn_lit.predict`` is this class behind a Hydra command line, so the two always print the same text.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from crnn_lit.checkpoint import CheckpointError, load_model
from crnn_lit.config import ConfigError, compose_config, resolve_ckpt
from crnn_lit.data.sample import BadSample
from crnn_lit.data.sources.image_io import decode_image, image_array
from crnn_lit.inference import (
    OnnxBackend,
    TorchBackend,
    chunked,
    reading_preprocess,
    recognize,
    too_narrow,
    width_batches,
)
from crnn_lit.preprocess import Preprocess
from crnn_lit.transcription import Decoder
from crnn_lit.transcription.lexicon import Lexicon

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
# an image file, a folder (recursive) or a glob; a PIL image; a uint8 H×W or H×W×{3,4} RGB(A) array
ImageInput = str | Path | Image.Image | np.ndarray


@dataclass(frozen=True)
class Prediction:
    """What was read in one image; an unreadable one has ``error`` set (then text "" and confidence 0)."""

    text: str
    confidence: float  # probability of the returned labelling (as the decoder's), in [0, 1]
    image: str = ""  # which input: its path (relative to the folder or glob given alone), or "#<i>" in a list
    error: str | None = None


class Recognizer:
    """Reads word images with one model and one decoder. Build it with :meth:`from_pretrained`,
    :meth:`from_checkpoint` (a checkpoint or ``.onnx`` file) or :meth:`from_config` (a composed predict config)."""

    def __init__(self, backend: TorchBackend | OnnxBackend, preprocess: Preprocess, decoder: Decoder,
                 batch_size: int, chunk_size: int, turn_tall: float | None = None):
        self.backend, self.preprocess, self.decoder, self.batch_size = backend, preprocess, decoder, batch_size
        self.chunk_size = chunk_size  # inputs decoded and held at once (iter_read)
        # crops at least `turn_tall` times taller than wide are also read turned ±90° (inference.TurnTall)
        self._prepare = reading_preprocess(backend, preprocess, turn_tall)
        self._turn_tall, self._frame = turn_tall, backend.frame_width
        lexicon = getattr(decoder, "lexicon", None)  # per-image word lists are looked up by each image's key
        self._per_image = lexicon if lexicon is not None and lexicon.is_per_image else None

    @classmethod
    def from_config(cls, cfg: DictConfig, decoder_options: Mapping[str, Any] | None = None) -> Recognizer:
        """From conf/predict.yaml as composed (``ckpt``/``pretrained``, ``decoder``, ``batch_size``, ``chunk_size``,
        ``turn_tall``); ``decoder_options`` override the decoder's config (values may be objects, e.g. a ``Lexicon``; ``lexicon``
        also takes a list of words or a word-list file)."""
        ckpt = resolve_ckpt(cfg)
        if ckpt.endswith(".onnx"):
            if not Path(ckpt).is_file():
                raise CheckpointError(f"ONNX model not found: {ckpt}")
            backend = OnnxBackend(ckpt)
            charset, preprocess = backend.charset, backend.preprocess
        else:
            loaded = load_model(ckpt)
            backend, charset = TorchBackend(loaded.model), loaded.charset
            preprocess = Preprocess.from_record(loaded.config)
        options = dict(decoder_options or {})
        if isinstance(options.get("lexicon"), (str, Path, list, tuple)):  # a word list file, or the words themselves
            words = options["lexicon"]
            options["lexicon"] = Lexicon(words=list(words)) if isinstance(words, (list, tuple)) else \
                Lexicon.from_file(words)
        decoder = instantiate(cfg.decoder, **options)(charset)
        return cls(backend, preprocess, decoder, int(cfg.batch_size), int(cfg.chunk_size), cfg.get("turn_tall"))

    @classmethod
    def from_checkpoint(cls, path: str | Path, decoder: str | None = None,
                        decoder_options: Mapping[str, Any] | None = None, batch_size: int | None = None,
                        turn_tall: float | None = None) -> Recognizer:
        """A crnn_lit checkpoint (``.pt``/``.ckpt``) or an exported ``.onnx`` (its ``.json`` sidecar beside it).
        ``decoder``: a conf/decoder name (greedy, beam, beam_lm, lexicon); None = conf/predict.yaml's."""
        cfg = _predict_config(decoder, ckpt=str(path), batch_size=batch_size, turn_tall=turn_tall)
        return cls.from_config(cfg, decoder_options)

    @classmethod
    def from_pretrained(cls, name: str | None = None, decoder: str | None = None,
                        decoder_options: Mapping[str, Any] | None = None, batch_size: int | None = None,
                        turn_tall: float | None = None) -> Recognizer:
        """A shipped model, ``<paths.pretrained_dir>/<name>.pt`` (None = conf/predict.yaml's ``pretrained``)."""
        cfg = _predict_config(decoder, ckpt="pretrained", pretrained=name, batch_size=batch_size, turn_tall=turn_tall)
        return cls.from_config(cfg, decoder_options)

    def read(self, images: ImageInput | Iterable[ImageInput]) -> list[Prediction]:
        """One ``Prediction`` per image, in input order (a folder's files sorted by path). Images are batched by
        width; one that cannot be read (corrupt file, wrong array type, narrower than one CTC frame at the model's
        height) is logged and returned with ``error``."""
        return list(self.iter_read(images))

    def iter_read(self, images: ImageInput | Iterable[ImageInput], chunk_size: int | None = None
                  ) -> Iterator[Prediction]:
        """:meth:`read` as a stream, for any number of images in bounded memory: ``chunk_size`` inputs at a time
        (None = the one this recognizer was built with, conf/predict.yaml's ``chunk_size``) are decoded, batched
        by width and read before the next are touched; predictions come in input order, the same as
        :meth:`read`'s (each image is padded on its own, so its batch never changes its reading). An iterator
        of images is consumed as the predictions are. Memory stays flat in a process that sets
        ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0`` before its first convolution, as predict and evaluate do
        (``inference.bound_kernel_cache``)."""
        return self.iter_keyed(keyed_inputs(images), chunk_size)

    def iter_keyed(self, inputs: Iterable[tuple[str, ImageInput]], chunk_size: int | None = None
                   ) -> Iterator[Prediction]:
        """:meth:`iter_read` of ``(key, image)`` pairs (:func:`keyed_inputs`); ``key`` names each prediction."""
        for chunk in chunked(inputs, chunk_size or self.chunk_size):
            yield from self._read_chunk(chunk)

    def _read_chunk(self, inputs: list[tuple[str, Any]]) -> list[Prediction]:
        tensors, keys, failed = [], [], {}
        for key, image in inputs:
            try:
                array = decode_image(image, key) if isinstance(image, Path) else image_array(image, key)
                narrow = too_narrow(array.shape[1], array.shape[0], self.preprocess, self._frame, self._turn_tall)
                if narrow:
                    raise BadSample("too_narrow", key, narrow)
                tensors.append(self._prepare(array))
                keys.append(key)
            except BadSample as err:
                failed[key] = Prediction("", 0.0, key, f"{err.reason} ({err.detail})" if err.detail else err.reason)
                log.warning("cannot read %s (%s); skipped", key, err.reason)
        read = {}
        batches = width_batches(tensors, self.batch_size, keys, output_length=self.backend.output_length,
                                width_multiple=self.preprocess.width_multiple)
        for r in recognize(self.backend, batches):
            lexicons = self._per_image.lists_for(r.keys) if self._per_image is not None else None
            for key, p in zip(r.keys, self.decoder.decode(r.log_probs, r.lengths, lexicons=lexicons)):
                read[key] = Prediction(p.text, float(p.confidence), key)
        return [read[key] if key in read else failed[key] for key, _ in inputs]  # input order, not width order


def _predict_config(decoder: str | None, **values) -> DictConfig:
    """conf/predict.yaml (where the defaults live) with ``decoder=<name>`` and the values that are given."""
    cfg = compose_config([f"decoder={decoder}"] if decoder else [], config_name="predict")
    for key, value in values.items():
        if value is not None:
            cfg[key] = value
    return cfg


def keyed_inputs(images: ImageInput | Iterable[ImageInput]) -> Iterator[tuple[str, Any]]:
    """(key, file path or in-memory image) of every input, lazily (an iterator of images is not held). One path
    (file, folder searched recursively, glob): keys relative to it. A list (also ``inputs=[a.png,dir]`` from the
    command line): files keyed by their path as found, each once, in the order given; in-memory images by their
    position, ``#<i>``."""
    if isinstance(images, (str, Path)):
        yield from ((key, path) for path, key in find_images(str(images), relative=True))
        return
    if isinstance(images, (Image.Image, np.ndarray)):
        yield "#0", images
        return
    seen: set[str] = set()
    for i, item in enumerate(images):
        if isinstance(item, (str, Path)):
            for path, key in find_images(str(item), relative=False):
                if key not in seen:
                    seen.add(key)
                    yield key, path
        else:
            yield f"#{i}", item


def find_images(inputs: str, relative: bool) -> list[tuple[Path, str]]:
    """(path, key) of the image files of a file, a folder (recursive) or a glob; keys relative to it or not."""
    path = Path(inputs)
    if path.is_file():
        files, base = [path], path.parent
    elif path.is_dir():
        files, base = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), path
    else:
        files, base = sorted(Path(p) for p in glob.glob(inputs, recursive=True) if Path(p).is_file()), Path(".")
        if not files:
            raise ConfigError(f"inputs={inputs!r} is not a file, a folder or a glob that matches any file")
    return [(p, str(p.relative_to(base)) if relative and p.is_relative_to(base) else str(p)) for p in files]
