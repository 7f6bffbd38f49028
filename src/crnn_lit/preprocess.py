"""The network's input spec: how any image becomes network input (colour, the paper's single height, the width
policy, the tensor). One ``Preprocess`` object, configured by the ``preprocess`` config group, serves the data
module, the renderer, the inspector, inference and export, and is recorded in every checkpoint and exported
model. (Augmentation is the ``augment`` group: albumentations pipelines applied to training images only.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import ClassVar, Literal

import cv2
import numpy as np
import torch

from crnn_lit.knobs import SIZE, Knob, Knobs, check
from crnn_lit.paths import ConfigError

WidthPolicy = Literal["bucketed", "keep_ratio", "fixed"]
NarrowPolicy = Literal["stretch", "pad"]
ChannelOrder = Literal["rgb", "bgr"]


class Resize:
    """Scale an image to ``height`` and pick its width by policy.

    ``bucketed`` and ``keep_ratio`` keep the aspect ratio, width clamped to [min_width, max_width] (the two differ
    only in how batches are formed; ``max_width`` None: no upper bound, a line is read at its own width);
    ``fixed`` stretches everything to ``fixed_width`` (DTRB's 32×100).
    ``narrow``: an image narrower than ``min_width`` is stretched to it (``stretch``), or keeps its aspect ratio
    (``pad``: ``Preprocess.to_input`` then pads it to ``min_width``); ``width_for`` is the network input's
    width either way.
    """

    def __init__(self, height: int, min_width: int, max_width: int | None, policy: WidthPolicy, fixed_width: int,
                 narrow: NarrowPolicy = "stretch"):
        if policy not in ("bucketed", "keep_ratio", "fixed"):
            raise ValueError(f"preprocess.width_policy must be bucketed, keep_ratio or fixed, got {policy!r}")
        if max_width is not None and min_width > max_width:
            raise ConfigError(f"preprocess.min_width={min_width} is above preprocess.max_width={max_width}: the "
                              "minimum cannot exceed the maximum")
        if narrow not in ("stretch", "pad"):
            raise ValueError(f"preprocess.narrow must be stretch or pad, got {narrow!r}")
        self.height, self.min_width, self.max_width = height, min_width, max_width
        self.policy, self.fixed_width, self.narrow = policy, fixed_width, narrow

    def width_for(self, width: int, height: int) -> int:
        """Width after resizing an image of the given size (what the batch sampler groups by)."""
        if self.policy == "fixed":
            return self.fixed_width
        scaled = max(round(width * self.height / max(height, 1)), self.min_width)
        return int(scaled if self.max_width is None else min(scaled, self.max_width))

    def widths_for(self, sizes: np.ndarray) -> np.ndarray:
        """``width_for`` of an ``(n, 2)`` array of (width, height), as int32 (the sampler's whole epoch at once;
        ``width_for`` stays plain Python: it runs per image in the loader, where numpy's overhead would cost)."""
        sizes = np.asarray(sizes).reshape(-1, 2)
        if self.policy == "fixed":
            return np.full(len(sizes), self.fixed_width, dtype=np.int32)
        # exact in float64 as in Python (w·h < 2^53), then rounded half to even as round() does
        scaled = sizes[:, 0] * float(self.height)
        scaled /= np.maximum(sizes[:, 1], 1)
        return np.clip(np.rint(scaled, out=scaled), self.min_width, self.max_width, out=scaled).astype(np.int32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        new_w = self.width_for(w, h)
        if self.narrow == "pad" and self.policy != "fixed":  # below min_width: the ratio kept, padded later
            new_w = min(new_w, max(round(w * self.height / max(h, 1)), 1))
        if (h, w) == (self.height, new_w):
            return image
        shrinking = new_w * self.height < w * h
        return cv2.resize(image, (new_w, self.height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 H×W or H×W×{1,3,4} → H×W (channels=1) or H×W×3 (channels=3). Alpha is composited onto white."""
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1:
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if channels == 3:
        return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    raise ValueError(f"preprocess.channels must be 1 or 3, got {channels}")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H×W[×C] → float C×H×W in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(image))
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return t.float().div_(127.5).sub_(1.0)


def to_pixels(tensor: torch.Tensor) -> np.ndarray:
    """``to_tensor`` undone: a network input C×H×W in [-1, 1] → uint8 H×W×C (rounded, so a preprocessed image
    comes back exactly), for showing what the network saw (error sheets, logged validation samples)."""
    return ((tensor.detach().float().cpu() + 1.0) * 127.5).clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


# The named input specs, as changes to Preprocess's defaults (conf/preprocess/<name>.yaml composes them):
INPUT_SPECS: dict[str, dict] = {
    "default": {},
    # deep-text-recognition-benchmark's: every image stretched to 32×100 (its models are trained that way;
    # `python -m crnn_lit.checkpoint import --format dtrb` records this)
    "dtrb": {"width_policy": "fixed"},
    # EasyOCR's generation-2 recognizers: height 64, aspect ratio kept, padded with the last column
    # (`python -m crnn_lit.checkpoint import --format easyocr` records this)
    "easyocr": {"height": 64},
    # PaddleOCR's PP-OCR recognizers: colour at height 48 in OpenCV's BGR order, aspect ratio kept, at least 320 wide
    # with zeros on the right (as its reader pads), up to its 3200; widths a multiple of 8, the backbone's column
    # stride (`python -m crnn_lit.checkpoint import --format ppocr` records this)
    "ppocr": {"height": 48, "channels": 3, "channel_order": "bgr", "min_width": 320, "max_width": 3200,
              "narrow": "pad", "width_multiple": 8},
}


@dataclass(frozen=True)
class Preprocess:
    """The input spec: ``channels`` (1 = grayscale as in the paper, 3 = RGB), every image scaled to ``height``, its
    width by ``width_policy`` (see ``Resize``). The defaults are the one place these values are written
    (conf/preprocess/default.yaml composes them: the data module, the renderer, the backbone read them from
    there); then they travel with the model: checkpoints record [`record`][crnn_lit.preprocess.Preprocess.record], exported models [`to_dict`][crnn_lit.preprocess.Preprocess.to_dict]."""

    height: int = 32  # the paper rescales every image to one height
    channels: int = 1  # 1 = grayscale (paper), 3 = RGB
    min_width: int = 16
    # wider crops are squeezed to it (None: no bound, T grows with W; lines train with it, and Recognizer reads
    # every crop at its own width whatever the model's record says)
    max_width: int | None = 400
    width_policy: WidthPolicy = "bucketed"  # bucketed (group similar widths) | keep_ratio (pad random batches) | fixed
    fixed_width: int = 100  # used by width_policy=fixed (DTRB's 32×100)
    # Inference pads each image on the right (repeating its last column, as training batches do) to the next
    # multiple of this, and batches one padded width only: a reading never depends on which images share its
    # batch, and the widths stay few enough for full batches (1 = exact widths: no padding, smaller batches)
    width_multiple: int = 4
    # Images narrower than min_width (at ``height``): stretched to it (stretch), or kept as they are and right-padded
    # to it with zeros (pad: the network input's 0, mid-grey; PP-OCR's reader does this)
    narrow: NarrowPolicy = "stretch"
    channel_order: ChannelOrder = "rgb"  # of a 3-channel input: PP-OCR's models read OpenCV's BGR

    KNOBS: ClassVar[Knobs] = {"height": SIZE, "min_width": SIZE, "max_width": Knob(int, 1, optional=True),
                              "fixed_width": SIZE, "width_multiple": SIZE}

    def __post_init__(self):
        check(self.KNOBS, "preprocess.", **{name: getattr(self, name) for name in self.KNOBS})
        to_channels(np.zeros((1, 1), np.uint8), self.channels)  # a bad channel count fails here, not per image
        self.resize  # noqa: B018 — validates the width settings at construction
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"preprocess.channel_order must be rgb or bgr, got {self.channel_order!r}")

    @classmethod
    def from_conf(cls, name: str = "default", **overrides) -> Preprocess:
        """A named input spec (``INPUT_SPECS``: default, dtrb, easyocr — what conf/preprocess/<name>.yaml
        composes); ``overrides`` replace single values."""
        if name not in INPUT_SPECS:
            raise FileNotFoundError(f"no input spec {name!r} (known: {', '.join(INPUT_SPECS)})")
        return cls(**INPUT_SPECS[name]).replace(**overrides)

    @classmethod
    def from_record(cls, record: dict) -> Preprocess:
        """From a checkpoint's model config or an exported model's sidecar (extra keys ignored). Records older
        than the width settings (e.g. the shipped quickstart_synthetic.pt) get this class's defaults:
        min/max width are what every model was trained with then, ``width_multiple`` only sets inference padding.
        Height and channels shape the network and must be there."""
        missing = [k for k in ("height", "channels") if record.get(k) is None]
        if missing:
            raise KeyError(f"the model record lacks preprocessing keys {missing}")
        values = {k: record.get(k) for k in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if v is not None})  # an old record: the defaults

    def replace(self, **changes) -> Preprocess:
        return replace(self, **changes)

    @cached_property
    def resize(self) -> Resize:  # built (and validated) once, not per image
        return Resize(self.height, self.min_width, self.max_width, self.width_policy, self.fixed_width, self.narrow)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        return self.to_input(self.resize(to_channels(image, self.channels)))

    def to_input(self, image: np.ndarray) -> torch.Tensor:
        """A resized uint8 image (``resize``'s output, augmented or not) → the network's input tensor: channel
        order, [-1, 1], and a narrow image padded to ``min_width`` (``narrow="pad"``)."""
        if self.channel_order == "bgr" and image.ndim == 3:
            image = image[:, :, ::-1]
        tensor = to_tensor(image)
        if self.narrow == "pad" and tensor.shape[-1] < self.min_width:
            tensor = torch.nn.functional.pad(tensor, (0, self.min_width - tensor.shape[-1]))
        return tensor

    def to_pixels(self, tensor: torch.Tensor) -> np.ndarray:
        """[`to_pixels`][crnn_lit.preprocess.to_pixels] in RGB order whatever the network's: what it saw, for showing."""
        pixels = to_pixels(tensor)
        return np.ascontiguousarray(pixels[:, :, ::-1]) if self.channel_order == "bgr" and pixels.shape[2] == 3 \
            else pixels

    def record(self) -> dict:
        """The values, as a checkpoint's model config stores them."""
        return asdict(self)

    def to_dict(self) -> dict:
        """[`record`][crnn_lit.preprocess.Preprocess.record] plus every step a non-Python consumer of an exported model must reproduce, in order
        (what ``__call__``, ``Resize`` and inference batching do; tests/onnx_client.py follows it alone)."""
        return {
            **self.record(),
            "steps": ["image", "color", "width_rule", "resize", "normalize", "pad"],  # the keys below, in order
            "image": "uint8 H×W (gray) or H×W×3 (RGB); RGBA is composited onto white: rgb * a/255 + 255 * "
                     "(1 - a/255) in float32, truncated to uint8",
            "color": "channels = 1: RGB→gray as OpenCV's COLOR_RGB2GRAY (a gray image as it is); channels = 3: "
                        "RGB (gray→RGB as COLOR_GRAY2RGB), its channels reversed (BGR) if channel_order = 'bgr'",
            "width_rule": "W = fixed_width if width_policy = 'fixed', else clamp(round(w * height / max(h, 1)), "
                     "min_width, max_width) for an h×w image; round: to the nearest integer, halves to even "
                     "(Python's round); max_width null: no upper bound. narrow = 'pad': an image whose rounded "
                     "width is below min_width is resized to max(that width, 1) instead, and padded in the pad step",
            "resize": "to W×height with OpenCV's cv2.resize, interpolation INTER_AREA when shrinking (W * height "
                      "< w * h) else INTER_LINEAR; an image already height×W is left as it is",
            "normalize": "pixel / 127.5 - 1 in float32 (uint8 → [-1, 1])",
            "layout": "N×C×H×W float32",
            "pad": "narrow = 'pad': first right-pad with zeros (after normalize) to min_width; then right, "
                   "repeating each image's last column, to the next multiple of width_multiple; a batch "
                   "holds one padded width (a reading never depends on its batch); decode only the first "
                   "output_length(W) frames of an image, W its own width before padding",
        }
