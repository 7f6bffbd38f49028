"""Read word images with an exported crnn_lit model using nothing but its ``.json`` sidecar: numpy, OpenCV and
onnxruntime, no crnn_lit — what a program in another language would do (tests/test_export.py runs it with
crnn_lit made unimportable and requires the readings of ``predict``).

    python tests/onnx_client.py model.onnx a.png b.png …   # one JSON line per image: image, text, confidence
"""

import json
import sys

import cv2
import numpy as np
import onnxruntime as ort


def load(path: str) -> np.ndarray:
    """The sidecar's ``image`` step: uint8 gray or RGB, alpha composited onto white."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image.ndim == 3 and image.shape[2] == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        alpha = rgb[:, :, 3:4].astype(np.float32) / 255.0
        return (rgb[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def network_input(image: np.ndarray, spec: dict) -> tuple[np.ndarray, int]:
    """The sidecar's channels, width, resize, normalize and pad steps: (1×C×H×W_padded float32, W)."""
    if spec["channels"] == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif spec["channels"] == 3 and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if spec["channels"] == 3 and spec.get("channel_order") == "bgr":
        image = image[:, :, ::-1]
    h, w = image.shape[:2]
    height = spec["height"]
    if spec["width_policy"] == "fixed":
        width = spec["fixed_width"]
    else:
        width = min(max(round(w * height / max(h, 1)), spec["min_width"]), spec["max_width"])
        if spec.get("narrow") == "pad":
            width = min(width, max(round(w * height / max(h, 1)), 1))
    if (h, w) != (height, width):
        shrinking = width * height < w * h
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    x = image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    if spec.get("narrow") == "pad" and width < spec["min_width"]:
        x = np.concatenate([x, np.zeros((x.shape[0], height, spec["min_width"] - width), np.float32)], axis=2)
        width = spec["min_width"]
    padded = -(-width // spec["width_multiple"]) * spec["width_multiple"]
    x = np.concatenate([x, np.repeat(x[:, :, -1:], padded - width, axis=2)], axis=2)
    return x[None], width


def greedy(logits: np.ndarray, frames: int, chars: str) -> tuple[str, float]:
    """The sidecar's ``decode.greedy`` and ``decode.confidence`` over an image's own frames."""
    z = logits[:frames, 0].astype(np.float64)
    log_probs = z - z.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    best = log_probs.argmax(1)
    text, previous = [], 0
    for c in best:
        if c != previous and c != 0:
            text.append(chars[c - 1])
        previous = c
    return "".join(text), float(np.exp(log_probs.max(1).sum()))


def main(model: str, images: list[str]) -> None:
    with open(model + ".json", encoding="utf-8") as f:
        sidecar = json.load(f)
    spec, chars = sidecar["preprocess"], sidecar["charset"]["chars"]
    stride, offset = sidecar["output_length"]["stride"], sidecar["output_length"]["offset"]
    pad = sidecar["output_length"].get("pad", 0)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for path in images:
        x, width = network_input(load(path), spec)
        (logits,) = session.run(None, {sidecar["input"]["name"]: x})
        text, confidence = greedy(logits, (width + pad) // stride + offset, chars)
        print(json.dumps({"image": path, "text": text, "confidence": confidence}))
    assert sys.modules.get("crnn_lit") is None, "the client must not use crnn_lit"


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
