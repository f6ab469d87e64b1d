"""Golden values for tests/nn_lora.rs (see README.md beside this file): mlx-lm 0.32.0's own
LoRASwitchLinear (tuner/lora.py), DoRALinear and DoRAEmbedding (tuner/dora.py), over dense and
quantized bases: parameter paths, forward, fuse (the fused layer's forward and weights).

As gen_nn_moe.py, mlx-lm's packages are registered bare and only the layer files are imported.
Every weight, adapters included, is set from `pattern(shape, phase, scale) =
sin(i * 0.37 + phase) * scale` in float32, so the random initialisation plays no part.
"""

import importlib.util
import math
import os
import sys
import types

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from golden_common import encode, write

root = importlib.util.find_spec("mlx_lm").submodule_search_locations[0]
for name, sub in [("mlx_lm", ""), ("mlx_lm.models", "models"), ("mlx_lm.tuner", "tuner")]:
    pkg = types.ModuleType(name)
    pkg.__path__ = [os.path.join(root, sub)]
    sys.modules[name] = pkg
from mlx_lm.models.switch_layers import SwitchLinear  # noqa: E402
from mlx_lm.tuner.dora import DoRAEmbedding, DoRALinear  # noqa: E402
from mlx_lm.tuner.lora import LoRASwitchLinear  # noqa: E402


def pattern(shape, phase, scale=1.0):
    n = math.prod(shape)
    return (mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase) * scale).reshape(shape)


def paths(m, trainable=False):
    t = m.trainable_parameters() if trainable else m.parameters()
    return [k for k, _ in tree_flatten(t)]


def dense_weight(layer):
    if "scales" in layer:
        return mx.dequantize(layer.weight, layer.scales, layer.biases, group_size=layer.group_size,
                             bits=layer.bits, mode=layer.mode)
    return layer.weight


E, D, H, R = 4, 32, 64, 4
cases = {}

# LoRASwitchLinear, dense and quantized base.
sl = SwitchLinear(D, H, E, bias=True)
sl.load_weights([("weight", pattern((E, H, D), 0.2, 0.3)), ("bias", pattern((E, H), 0.3, 0.3))])
x = pattern((2, 3, 1, 1, D), 0.5)
idx = mx.array([[[0, 2], [1, 3], [3, 3]], [[2, 1], [0, 0], [1, 2]]], dtype=mx.int32)
sorted_x = pattern((6, 1, 1, D), 0.6)
sorted_idx = mx.array([[0], [0], [1], [2], [3], [3]], dtype=mx.int32)
adapters = [("lora_a", pattern((E, R, D), 1.3, 0.3)), ("lora_b", pattern((E, H, R), 1.4, 0.3))]
for key, base in [("switch", sl), ("switch_q", sl.to_quantized(group_size=32, bits=4))]:
    lora = LoRASwitchLinear.from_base(base, r=R, dropout=0.0, scale=2.0)
    lora.load_weights(adapters, strict=False)
    fused = lora.fuse()
    cases[key] = {
        "paths": paths(lora),
        "trainable": paths(lora, True),
        "out": encode(lora(x, idx)),
        "sorted_out": encode(lora(sorted_x, sorted_idx, sorted_indices=True)),
        "fused_paths": paths(fused),
        "fused_out": encode(fused(x, idx)),
        "fused_weight": encode(dense_weight(fused)),
    }

# DoRALinear, dense and quantized base (with a bias).
base = nn.Linear(D, H, bias=True)
base.load_weights([("weight", pattern((H, D), 1.1, 0.3)), ("bias", pattern((H,), 1.2, 0.3))])
xl = pattern((2, 3, D), 1.5)
dora_adapters = [("lora_a", pattern((D, R), 1.3, 0.3)), ("lora_b", pattern((R, H), 1.4, 0.3))]
for key, b in [("dora", base), ("dora_q", nn.QuantizedLinear.from_linear(base, 32, 4))]:
    dora = DoRALinear.from_base(b, r=R, dropout=0.0, scale=2.0)
    m0 = dora.m
    fresh = dora(xl)
    dora.load_weights(dora_adapters, strict=False)
    m_trained = pattern((H,), 1.6, 0.5) + 2.0
    cases[key] = {
        "paths": paths(dora),
        "m": encode(m0),
        "fresh_out": encode(fresh),
        "out": encode(dora(xl)),
    }
    dora.m = m_trained
    fused = dora.fuse()
    dora.linear.freeze()
    grads = nn.value_and_grad(dora, lambda m: m(xl).sum())(dora)[1]
    cases[key].update({
        "grads": {k: encode(v) for k, v in tree_flatten(grads)},
        "m_trained_out": encode(dora(xl)),
        "fused_paths": paths(fused),
        "fused_out": encode(fused(xl)),
        "fused_weight": encode(dense_weight(fused)),
    })

# DoRAEmbedding (dense table only in mlx-lm).
N, DE = 10, 16
emb = nn.Embedding(N, DE)
emb.load_weights([("weight", pattern((N, DE), 2.1, 0.5))])
de = DoRAEmbedding.from_base(emb, r=R, dropout=0.0, scale=2.0)
m0 = de.m
de.load_weights([("lora_a", pattern((N, R), 2.3, 0.3)), ("lora_b", pattern((R, DE), 2.4, 0.3))],
                strict=False)
de.m = pattern((N,), 2.5, 0.5) + 2.0
ids = mx.array([[0, 3, 9], [5, 5, 1]], dtype=mx.int32)
xe = pattern((2, DE), 2.6)
fused = de.fuse()
de.embedding.freeze()
grads = nn.value_and_grad(de, lambda m: m(ids).sum())(de)[1]
cases["dora_embedding"] = {
    "grads": {k: encode(v) for k, v in tree_flatten(grads)},
    "paths": paths(de),
    "m": encode(m0),
    "out": encode(de(ids)),
    "as_linear": encode(de.as_linear(xe)),
    "fused_weight": encode(fused.weight),
}

write("nn_lora", cases)
