"""A PP-OCRv6 recognizer's ONNX inference graph, written op by op as PaddleOCR's exporter (paddle2onnx, opset 11)
lays it out, from one of our PP-OCR networks' weights: convs followed by a bias ``Add``, GELU spelt out with
``Erf``, LayerNorm spelt out with ``ReduceMean``/``Pow``/``Sqrt``, attention through ``Reshape``/``Transpose``/
``Slice``, ``MatMul`` weights stored in × out, a ``Softmax`` at the end and the dictionary in the metadata.
``unfold_stem_bn``: the stem's convs are written unfolded (a bias-free conv + a BatchNormalization, as tiny's are).

tests/test_ppocr.py imports such a graph and checks the result against the network and onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from crnn_lit.model.neck import ConvMixer, SVTRNeck
from crnn_lit.model.pplcnet import HGStem


class _Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value, dtype=np.float32) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs) -> str:
        self.n += 1
        out = f"{kind.lower()}.{self.n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _conv(g: _Graph, x: str, conv: torch.nn.Conv2d, unfold_bn: bool = False, rng=None) -> str:
    w, b = _np(conv.weight), _np(conv.bias)
    k = w.shape[2:]
    pads = {"auto_pad": "SAME_UPPER"} if k == (2, 2) else {"pads": [k[0] // 2, k[1] // 2] * 2}
    attrs = {"strides": list(conv.stride), "group": conv.groups, "kernel_shape": list(k), **pads}
    if unfold_bn:  # conv(W / f) then BN(γ, β, μ, σ²) with f = γ / sqrt(σ² + ε), β = b + μ f: folds back to (W, b)
        mean, var, gamma = rng.normal(size=len(b)), rng.uniform(0.5, 2, len(b)), rng.uniform(0.5, 2, len(b))
        f = gamma / np.sqrt(var + 1e-5)
        y = g.op("Conv", x, g.const(w / f[:, None, None, None]), **attrs)
        return g.op("BatchNormalization", y, g.const(gamma), g.const(b + mean * f), g.const(mean), g.const(var),
                    epsilon=1e-5)
    return g.op("Add", g.op("Conv", x, g.const(w), **attrs), g.const(b.reshape(1, -1, 1, 1)))


def _gelu(g: _Graph, x: str) -> str:
    erf = g.op("Erf", g.op("Div", x, g.const(np.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const(1.0))), g.const(0.5))


def _swish(g: _Graph, x: str) -> str:
    return g.op("Mul", x, g.op("Sigmoid", x))


def _hardswish(g: _Graph, x: str) -> str:
    return g.op("Mul", g.op("HardSigmoid", x, alpha=1 / 6, beta=0.5), x)


def _conv_bn(g: _Graph, x: str, seq, one_d: bool = False) -> str:
    """A neck conv (Conv1d weight (o, i, k) → (o, i, 1, k)) + BN; ``one_d``: BN on (N, C, T) as tiny's."""
    conv, bn = seq[0], seq[1]
    w = _np(conv.weight)[:, :, None, :]
    k = w.shape[3]
    y = g.op("Conv", x, g.const(w), strides=[1, 1], group=conv.groups, kernel_shape=[1, k], pads=[0, k // 2, 0, k // 2])
    if one_d:
        y = g.op("Squeeze", y, axes=[2])
    y = g.op("BatchNormalization", y, *(g.const(_np(t)) for t in (bn.weight, bn.bias, bn.running_mean,
                                                                  bn.running_var)), epsilon=bn.eps)
    return y


def _layer_norm(g: _Graph, x: str, ln) -> str:
    centred = g.op("Sub", x, g.op("ReduceMean", x, axes=[-1]))
    var = g.op("ReduceMean", g.op("Pow", centred, g.const(2.0)), axes=[-1])
    y = g.op("Div", centred, g.op("Sqrt", g.op("Add", var, g.const(ln.eps))))
    return g.op("Add", g.op("Mul", y, g.const(_np(ln.weight))), g.const(_np(ln.bias)))


def _linear(g: _Graph, x: str, lin) -> str:
    return g.op("Add", g.op("MatMul", x, g.const(_np(lin.weight).T)), g.const(_np(lin.bias)))


def _block(g: _Graph, x: str, blk) -> str:
    attn, d = blk.attn, blk.norm1.weight.shape[0]
    qkv = g.op("Reshape", _linear(g, _layer_norm(g, x, blk.norm1), attn.qkv),
               g.const([0, -1, 3, attn.heads, d // attn.heads], np.int64))
    qkv = g.op("Transpose", qkv, perm=[2, 0, 3, 1, 4])
    q, k, v = (g.op("Squeeze", g.op("Slice", qkv, g.const([i], np.int64), g.const([i + 1], np.int64),
                                    g.const([0], np.int64)), axes=[0]) for i in range(3))
    q = g.op("Add", g.op("Mul", q, g.const([attn.scale])), g.const(0.0))  # paddle's scale op
    a = g.op("Softmax", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), axis=3)
    y = g.op("Reshape", g.op("Transpose", g.op("MatMul", a, v), perm=[0, 2, 1, 3]), g.const([0, -1, d], np.int64))
    x = g.op("Add", x, _linear(g, y, attn.proj))
    h = _swish(g, _linear(g, _layer_norm(g, x, blk.norm2), blk.mlp[0]))
    return g.op("Add", x, _linear(g, h, blk.mlp[2]))


def write_graph(model, path, chars: str, unfold_stem_bn: bool = False, seed: int = 0) -> None:
    """The graph of ``model`` (a CRNN with a PPLCNetV4 backbone and an SVTRNeck or ConvMixer) at ``path``;
    ``chars``: the dictionary (the head predicts blank + chars + space)."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    bb = model.backbone
    stem = bb.stem
    if isinstance(stem, HGStem):
        x = g.op("Relu", _conv(g, "x", stem.stem1))
        a = g.op("Relu", _conv(g, x, stem.stem2a))
        a = g.op("Relu", _conv(g, a, stem.stem2b))
        p = g.op("MaxPool", x, kernel_shape=[2, 2], strides=[1, 1], auto_pad="SAME_UPPER")
        x = g.op("Relu", _conv(g, g.op("Concat", p, a, axis=1), stem.stem3))
        x = g.op("Relu", _conv(g, x, stem.stem4))
    else:
        x = _gelu(g, _conv(g, "x", stem.conv1, unfold_stem_bn, rng))
        x = _conv(g, x, stem.conv2, unfold_stem_bn, rng)
    for blk in bb.blocks:
        y = _conv(g, x, blk.dw)
        if not isinstance(blk.se, torch.nn.Identity):
            s = g.op("Relu", _conv(g, g.op("ReduceMean", y, axes=[2, 3], keepdims=1), blk.se.reduce))
            y = g.op("Mul", y, g.op("HardSigmoid", _conv(g, s, blk.se.expand), alpha=1 / 6, beta=0.5))
        z = _conv(g, _gelu(g, _conv(g, y, blk.fc1)), blk.fc2)
        x = g.op("Add", y, z) if blk.residual else z
    k = [bb.height // 16, 2]
    x = g.op("AveragePool", x, kernel_shape=k, strides=k, pads=[0, 0, 0, 0])
    neck = model.rnn
    if isinstance(neck, SVTRNeck):
        d = neck.output_size
        shortcut = _swish(g, _conv_bn(g, x, neck.shortcut))
        h = _swish(g, _conv_bn(g, x, neck.reduce))
        h = g.op("Add", h, _swish(g, _conv_bn(g, h, neck.local)))
        t = g.op("Transpose", g.op("Reshape", h, g.const([0, d, -1], np.int64)), perm=[0, 2, 1])
        for blk in neck.blocks:
            t = _block(g, t, blk)
        t = g.op("Reshape", _layer_norm(g, t, neck.norm), g.const([0, 1, -1, d], np.int64))
        t = g.op("Add", g.op("Transpose", t, perm=[0, 3, 1, 2]), shortcut)
        seq = g.op("Transpose", g.op("Squeeze", t, axes=[2]), perm=[0, 2, 1])
    else:
        assert isinstance(neck, ConvMixer)
        t = g.op("Unsqueeze", g.op("Squeeze", x, axes=[2]), axes=[2])
        t = g.op("Unsqueeze", _hardswish(g, _conv_bn(g, t, neck.depthwise, one_d=True)), axes=[2])
        t = _hardswish(g, _conv_bn(g, t, neck.pointwise, one_d=True))
        seq = g.op("Transpose", t, perm=[0, 2, 1])
        if neck.project is not None:
            seq = _linear(g, seq, neck.project)
    probs = g.op("Softmax", _linear(g, seq, model.head), axis=2)
    channels = model.backbone.stem.stem1.in_channels if isinstance(stem, HGStem) else stem.conv1.in_channels
    graph = helper.make_graph(
        g.nodes, "ppocr_rec", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, bb.height, "W"])],
        [helper.make_tensor_value_info(probs, TensorProto.FLOAT, ["N", "T", model.head.out_features])], g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    helper.set_model_props(proto, {"character": "\n".join(chars)})
    proto.ir_version = 7
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
