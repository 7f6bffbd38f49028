"""PaddleOCR's PP-OCRv6 recognizers (their ONNX inference graphs) → crnn_lit models, exactly.

A PP-OCRv6 recognizer is a CTC network of the CRNN family: PPLCNetV4 (``crnn_lit.model.pplcnet``), a neck
(``crnn_lit.model.neck``: the light SVTR encoder of "small", the conv mixer of "tiny") and a linear CTC head whose
class 0 is the blank. The graph's weights are read in execution order, each matched to the next weight of our
network with a shape check; the layout (stem, blocks with their strides and SE, neck, head) is inferred from the
graph itself, so any model of the family maps. What does not map is refused by name (``ImportRefused``).

* Backbone convs are in the folded form already (BN folded, re-parameterised branches fused: a conv + a bias
  ``Add``); a conv still followed by a BN (tiny's stem) is folded here, in float64.
* The neck's BN stay BN (frozen in training: ``crnn_lit.model.neck``); its 1×1 convs over a height-1 map are our
  1-D convs over frames; MatMul weights (in × out) are transposed into ``nn.Linear``'s (out × in).
* Tiny's head is two linears in a row (160 → 80 → classes): the first is the neck's ``project``.
* The dictionary is the graph's ``metadata_props["character"]`` (one character a line) or the ``inference.yml``
  beside it (``PostProcess.character_dict``); PP-OCR's decoder appends the space as the last class, and so do we
  when the head has the room for it.
* ``keep``: only the head rows of the given characters (and the blank) are kept, in that order — e.g. printable
  ASCII + space out of the 18,708-character dictionary of "small" (the softmax then runs over those rows only).

Reading needs the ``onnx`` package (``pip install crnn_lit[export]``); the graph is parsed, never run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crnn_lit.model.dtrb import ImportRefused

# every op a PP-OCRv6 inference graph uses; anything else is a part we do not have
_KNOWN_OPS = {"Identity", "Add", "Sub", "Mul", "Div", "Conv", "BatchNormalization", "Relu", "Erf", "HardSigmoid",
              "Sigmoid", "ReduceMean", "MatMul", "Transpose", "Reshape", "Slice", "Squeeze", "Unsqueeze", "Concat",
              "Shape", "Pow", "Sqrt", "Softmax", "MaxPool", "AveragePool", "Constant", "Cast", "Gather", "Flatten"}
_WEIGHT_OPS = {"Conv", "BatchNormalization", "MatMul", "Add", "Mul"}


@dataclass
class Weight:
    op: str  # the op consuming it: Conv, BatchNormalization, MatMul, Add, Mul
    value: np.ndarray
    attrs: dict  # the consuming node's attributes (a Conv's strides, group, kernel)


class Weights:
    """The graph's weights in execution order, taken one by one with checks."""

    def __init__(self, weights: list[Weight]):
        self.items, self.i = weights, 0

    def peek(self, offset: int = 0) -> Weight | None:
        j = self.i + offset
        return self.items[j] if j < len(self.items) else None

    def take(self, op: str, what: str, shape: tuple | None = None) -> Weight:
        w = self.peek()
        if w is None or w.op != op or (shape is not None and tuple(w.value.shape) != tuple(shape)):
            found = "nothing" if w is None else f"a {w.op} weight of shape {list(w.value.shape)}"
            want = f"{op} weight" + (f" of shape {list(shape)}" if shape is not None else "")
            raise ImportRefused(f"not a PP-OCRv6 recognizer graph: expected the {what} ({want}), found {found} "
                                f"(weight {self.i})")
        self.i += 1
        return w


def read_graph(path: str | Path):
    try:
        import onnx
    except ImportError:
        raise ImportRefused("reading an ONNX graph needs the onnx package: pip install 'crnn_lit[export]'") from None
    try:
        return onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 — protobuf's DecodeError and friends
        raise ImportRefused(f"cannot read {path} as an ONNX model ({type(err).__name__})") from None


def graph_weights(model) -> list[Weight]:
    """Float initializers with more than one value, by consuming node, in node order (the graph is sorted)."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    unknown = sorted({n.op_type for n in model.graph.node} - _KNOWN_OPS)
    if unknown:
        raise ImportRefused(f"the graph has ops no PP-OCRv6 recognizer has ({', '.join(unknown)}): not a part "
                            "crnn_lit can represent")
    out = []
    for node in model.graph.node:
        if node.op_type not in _WEIGHT_OPS:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        for name in node.input:
            if name in inits:
                value = numpy_helper.to_array(inits[name])
                if value.dtype.kind == "f" and value.size > 1:
                    out.append(Weight(node.op_type, value.astype(np.float64), attrs))
    return out


def _check_padding(w: Weight, what: str) -> None:
    """Our convs pad k // 2 on every side, and a 2×2 conv one row and column at the bottom and right (SAME_UPPER)."""
    k = w.value.shape[2:]
    auto = w.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if k == (2, 2):
        ok = auto == "SAME_UPPER"
    else:
        pads = list(w.attrs.get("pads", [0, 0, 0, 0]))
        ok = auto in ("NOTSET", "") and pads == [k[0] // 2, k[1] // 2, k[0] // 2, k[1] // 2]
    if not ok:
        raise ImportRefused(f"not a PP-OCRv6 recognizer graph: the {what} ({k[0]}×{k[1]}) pads "
                            f"{auto if auto not in ('NOTSET', '') else list(w.attrs.get('pads', []))}, not as ours")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class _Reader:
    """Turns the weight stream into our state dict and the layout it implies."""

    def __init__(self, weights: list[Weight]):
        self.w = Weights(weights)
        self.state: dict[str, torch.Tensor] = {}

    def _bias_or_bn(self, cout: int, what: str) -> tuple[np.ndarray, np.ndarray | None]:
        """What follows a conv: a bias ``Add`` (the folded form), a BN (its four arrays), or nothing."""
        nxt = self.w.peek()
        if nxt is not None and nxt.op == "Add" and nxt.value.size == cout and nxt.value.shape[-1:] in ((1,), (cout,)):
            return self.w.take("Add", f"{what} bias").value.reshape(cout), None
        if nxt is not None and nxt.op == "BatchNormalization":
            eps = nxt.attrs.get("epsilon", 1e-5)
            scale, shift, mean, var = (self.w.take("BatchNormalization", f"{what} batch norm", (cout,)).value
                                       for _ in range(4))
            return np.zeros(cout), np.stack([scale, shift, mean, var, np.full(cout, eps)])
        return np.zeros(cout), None

    def conv(self, key: str, what: str, shape: tuple | None = None, stride=None) -> np.ndarray:
        """A backbone conv into ``key`` (conv with bias; a following BN is folded); its weight's shape."""
        w = self.w.take("Conv", what, shape)
        if stride is not None and tuple(w.attrs.get("strides", (1, 1))) != tuple(stride):
            raise ImportRefused(f"not a PP-OCRv6 recognizer graph: the {what} has strides "
                                f"{list(w.attrs.get('strides'))}, expected {list(stride)}")
        _check_padding(w, what)
        weight, cout = w.value, w.value.shape[0]
        bias, bn = self._bias_or_bn(cout, what)
        if bn is not None:
            scale, shift, mean, var, eps = bn
            factor = scale / np.sqrt(var + eps)
            weight = weight * factor[:, None, None, None]
            bias = shift + (bias - mean) * factor
        self.state[f"{key}.weight"], self.state[f"{key}.bias"] = _t(weight), _t(bias)
        return w.value.shape

    def conv_bn(self, key: str, what: str, shape: tuple) -> np.ndarray:
        """A neck conv over frames (weight (out, in/groups, 1, k) → (out, in/groups, k)) and its BN, kept."""
        w = self.w.take("Conv", what, shape)
        _check_padding(w, what)
        if w.value.shape[2] != 1:
            raise ImportRefused(f"not a PP-OCRv6 neck: the {what} spans {w.value.shape[2]} rows, not 1")
        cout = w.value.shape[0]
        bias, bn = self._bias_or_bn(cout, what)
        if bn is None or bias.any():
            raise ImportRefused(f"not a PP-OCRv6 neck: the {what} is not a bias-free conv followed by batch norm")
        self.state[f"{key}.0.weight"] = _t(w.value[:, :, 0, :])
        for name, value in zip(("weight", "bias", "running_mean", "running_var"), bn[:4]):
            self.state[f"{key}.1.{name}"] = _t(value)
        self.state[f"{key}.1.num_batches_tracked"] = torch.tensor(0)
        if not np.allclose(bn[4], 1e-5):
            raise ImportRefused(f"the {what}'s batch norm has epsilon {bn[4][0]:g}, not 1e-5")
        return w.value.shape

    def linear(self, key: str, what: str, fan_in: int) -> int:
        w = self.w.take("MatMul", what)
        if w.value.ndim != 2 or w.value.shape[0] != fan_in:
            raise ImportRefused(f"not a PP-OCRv6 recognizer graph: the {what} maps {list(w.value.shape)}, expected "
                                f"{fan_in} inputs")
        out = w.value.shape[1]
        self.state[f"{key}.weight"] = _t(w.value.T)
        self.state[f"{key}.bias"] = _t(self.w.take("Add", f"{what} bias", (out,)).value)
        return out

    def layer_norm(self, key: str, what: str, dim: int) -> None:
        self.state[f"{key}.weight"] = _t(self.w.take("Mul", f"{what} scale", (dim,)).value)
        self.state[f"{key}.bias"] = _t(self.w.take("Add", f"{what} shift", (dim,)).value)

    # --- the three parts ---------------------------------------------------------------------------------------
    def backbone(self, in_channels: int) -> dict:
        first = self.w.peek()
        if first is None or first.op != "Conv" or first.value.shape[1:] != (in_channels, 3, 3):
            raise ImportRefused("not a PP-OCRv6 recognizer graph: it does not start with a 3×3 convolution")
        mid = first.value.shape[0]
        second = next((w for w in self.w.items[self.w.i + 1:] if w.op == "Conv"), None)
        if second is not None and second.value.shape[2:] == (2, 2):  # PP-HGNetV2's stem
            stem = "hg"
            self.conv("backbone.stem.stem1", "stem conv 1", (mid, in_channels, 3, 3), (2, 2))
            self.conv("backbone.stem.stem2a", "stem conv 2a", (mid // 2, mid, 2, 2), (1, 1))
            self.conv("backbone.stem.stem2b", "stem conv 2b", (mid, mid // 2, 2, 2), (1, 1))
            self.conv("backbone.stem.stem3", "stem conv 3", (mid, 2 * mid, 3, 3), (2, 2))
            out = self.conv("backbone.stem.stem4", "stem conv 4", None, (1, 1))[0]
        else:
            stem = "conv"
            self.conv("backbone.stem.conv1", "stem conv 1", (mid, in_channels, 3, 3), (2, 2))
            out = self.conv("backbone.stem.conv2", "stem conv 2", None, (2, 2))[0]
        blocks, c = [], out
        while (w := self.w.peek()) is not None and w.op == "Conv" and w.value.shape == (c, 1, 3, 3) \
                and w.attrs.get("group") == c:
            key = f"backbone.blocks.{len(blocks)}"
            stride = int(w.attrs.get("strides", (1, 1))[0])
            self.conv(f"{key}.dw", f"block {len(blocks)} depthwise conv", None, (stride, 1))
            se = self.w.peek() is not None and self.w.peek().value.shape == (c // 4, c, 1, 1)
            if se:
                self.conv(f"{key}.se.reduce", f"block {len(blocks)} SE reduce", (c // 4, c, 1, 1))
                self.conv(f"{key}.se.expand", f"block {len(blocks)} SE expand", (c, c // 4, 1, 1))
            self.conv(f"{key}.fc1", f"block {len(blocks)} channel mixer 1", (2 * c, c, 1, 1))
            cout = self.conv(f"{key}.fc2", f"block {len(blocks)} channel mixer 2", None)[0]
            if self.state[f"{key}.fc2.weight"].shape[1] != 2 * c:
                raise ImportRefused(f"not a PP-OCRv6 recognizer graph: block {len(blocks)}'s channel mixer is not "
                                    f"{c} → {2 * c} → out")
            blocks.append([int(cout), stride, bool(se)])
            c = cout
        if not blocks:
            raise ImportRefused("not a PP-OCRv6 recognizer graph: no depthwise 3×3 blocks after the stem")
        return {"_target_": "crnn_lit.model.pplcnet.PPLCNetV4", "stem": stem, "stem_channels": [int(mid), int(out)],
                "blocks": blocks, "batch_norm": False}, int(c)

    def neck(self, channels: int, heads: int | None) -> tuple[dict, int]:
        w = self.w.peek()
        if w is None or w.op != "Conv":
            raise ImportRefused("not a PP-OCRv6 recognizer graph: no neck convolution after the backbone")
        if w.attrs.get("group", 1) == channels and w.value.shape[1] == 1:  # tiny's depthwise conv mixer
            kernel = int(w.value.shape[3])
            self.conv_bn("rnn.depthwise", "neck depthwise conv", (channels, 1, 1, kernel))
            self.conv_bn("rnn.pointwise", "neck pointwise conv", (channels, channels, 1, 1))
            project = None
            if sum(x.op == "MatMul" for x in self.w.items[self.w.i:]) == 2:  # the head's first, low-rank linear
                project = self.linear("rnn.project", "head's first linear", channels)
            return {"_target_": "crnn_lit.model.neck.ConvMixer", "kernel": kernel, "project_to": project}, \
                project or channels
        dims = int(w.value.shape[0])
        self.conv_bn("rnn.shortcut", "neck shortcut conv", (dims, channels, 1, 1))
        self.conv_bn("rnn.reduce", "neck input conv", (dims, channels, 1, 1))
        kernel = int(self.w.peek().value.shape[3]) if self.w.peek() is not None else 0
        self.conv_bn("rnn.local", "neck local mixer", (dims, 1, 1, kernel))
        depth, hidden = 0, None
        while all(w is not None and w.op == "MatMul" and w.value.shape == shape
                  for w, shape in ((self.w.peek(2), (dims, 3 * dims)), (self.w.peek(4), (dims, dims)))):
            key = f"rnn.blocks.{depth}"
            self.layer_norm(f"{key}.norm1", f"transformer block {depth} norm 1", dims)
            self.linear(f"{key}.attn.qkv", f"transformer block {depth} qkv", dims)
            self.linear(f"{key}.attn.proj", f"transformer block {depth} projection", dims)
            self.layer_norm(f"{key}.norm2", f"transformer block {depth} norm 2", dims)
            hidden = self.linear(f"{key}.mlp.0", f"transformer block {depth} MLP 1", dims)
            self.linear(f"{key}.mlp.2", f"transformer block {depth} MLP 2", hidden)
            depth += 1
        if not depth:
            raise ImportRefused("not a PP-OCRv6 neck: no transformer block after the local mixer")
        if heads is None or dims % heads:
            raise ImportRefused("not a PP-OCRv6 neck: the attention's head count is not in the graph")
        self.layer_norm("rnn.norm", "neck's final norm", dims)
        return {"_target_": "crnn_lit.model.neck.SVTRNeck", "dims": dims, "depth": depth, "heads": heads,
                "mlp_ratio": hidden / dims, "kernel": kernel}, dims

    def head(self, fan_in: int) -> int:
        classes = self.linear("head", "CTC head", fan_in)
        if self.w.peek() is not None:
            extra = self.w.peek()
            raise ImportRefused(f"the graph has weights after the CTC head ({extra.op} {list(extra.value.shape)}): "
                                "not a part crnn_lit can represent")
        return classes


def _attention_heads(model) -> int | None:
    """The head count, from the qkv reshape's target shape (0, -1, 3, heads, head_dim)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]])
            if shape.size == 5 and int(shape[2]) == 3:
                return int(shape[3])
    return None


def _input_shape(model) -> tuple[int, int]:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    values = [d.dim_value for d in dims]
    if len(values) != 4 or not values[1] or not values[2]:
        raise ImportRefused(f"not a PP-OCRv6 recognizer graph: its input is not N×C×H×W with a fixed C and H "
                            f"({[d.dim_value or d.dim_param for d in dims]})")
    return values[1], values[2]


def dictionary(model, path: Path) -> list[str]:
    """The model's characters: the graph's metadata ``character`` or ``inference.yml`` beside it."""
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("character"):
        return meta["character"].split("\n")
    yml = Path(path).with_name("inference.yml")
    if yml.is_file():
        import yaml

        # BaseLoader: every scalar a string, so a dictionary entry "1" or "yes" stays that character
        chars = (yaml.load(yml.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}).get("PostProcess", {})
        if chars.get("character_dict"):
            return list(chars["character_dict"])
    raise ImportRefused(f"{path} carries no dictionary (metadata 'character') and there is no inference.yml beside "
                        "it with PostProcess.character_dict")


def convert_ppocr(path: str | Path, keep: str | None = None) -> tuple[dict, dict, str]:
    """(crnn_lit state dict, model config without the input spec, characters in class order) of the PP-OCR
    recognizer at ``path``; ``keep``: only these characters' head rows (and the blank's), in this order."""
    model = read_graph(path)
    channels, height = _input_shape(model)
    reader = _Reader(graph_weights(model))
    backbone, width = reader.backbone(channels)
    from onnx import helper

    pools = [{a.name: helper.get_attribute_value(a) for a in n.attribute}
             for n in model.graph.node if n.op_type == "AveragePool"]
    kernel = [[list(p.get("kernel_shape", [])), list(p.get("strides", []))] for p in pools]
    if kernel != [[[height // 16, 2], [height // 16, 2]]]:
        raise ImportRefused(f"not a PP-OCRv6 recognizer graph: its average pools (kernel, strides) are {kernel}, "
                            f"expected one of kernel and strides [{height // 16}, 2] at input height {height}")
    rnn, size = reader.neck(width, _attention_heads(model))
    classes = reader.head(size)
    chars = dictionary(model, Path(path))
    if classes == len(chars) + 2 and " " not in chars:
        chars = [*chars, " "]  # PP-OCR's decoder appends the space (use_space_char)
    if classes != len(chars) + 1:
        raise ImportRefused(f"the head predicts {classes} classes but the dictionary has {len(chars)} characters "
                            "(+ blank)")
    if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
        raise ImportRefused("the dictionary has entries that are not single characters, or repeats one: crnn_lit's "
                            "charsets are one character per class")
    state = reader.state
    text = "".join(chars)
    if keep is not None:
        missing = [c for c in keep if c not in chars]
        if missing:
            raise ImportRefused(f"the model's dictionary lacks {len(missing)} of the characters to keep: "
                                f"{''.join(missing[:20])!r}")
        rows = [0] + [chars.index(c) + 1 for c in keep]
        state["head.weight"], state["head.bias"] = state["head.weight"][rows].clone(), state["head.bias"][rows].clone()
        text = keep
    config = {"transform": {"_target_": "crnn_lit.model.transform.NoTransform"},
              "backbone": {**backbone, "height": height}, "rnn": rnn, "channels": channels, "height": height}
    return state, config, text
