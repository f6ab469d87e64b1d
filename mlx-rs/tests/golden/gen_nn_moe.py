"""Golden values for tests/nn_moe.rs (see README.md beside this file): mlx-lm 0.32.0's own
SwitchLinear, QuantizedSwitchLinear, SwitchGLU (unsorted and sorted paths) and LoRALinear.

mlx-lm's package `__init__` imports its tokenizer stack (transformers, numpy); the layers need
none of it, so the packages are registered bare and only the two layer files are imported.
Weights are `pattern(shape, phase, scale) = sin(i * 0.37 + phase) * scale` in float32.
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
from mlx_lm.models.switch_layers import QuantizedSwitchLinear, SwitchGLU, SwitchLinear  # noqa: E402
from mlx_lm.tuner.lora import LoRALinear  # noqa: E402


def pattern(shape, phase, scale=1.0):
    n = math.prod(shape)
    return (mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase) * scale).reshape(shape)


def load_formula(module):
    flat = tree_flatten(module.parameters())
    module.load_weights([(k, pattern(v.shape, 0.1 * i, 0.3)) for i, (k, v) in enumerate(flat)])
    return [k for k, _ in flat]


cases = {}
E, D, H = 4, 32, 64

sl = SwitchLinear(D, H, E, bias=True)
sl_paths = load_formula(sl)
x = pattern((2, 3, 1, 1, D), 0.5)
idx = mx.array([[[0, 2], [1, 3], [3, 3]], [[2, 1], [0, 0], [1, 2]]], dtype=mx.int32)
cases["switch_linear"] = {"paths": sl_paths, "out": encode(sl(x, idx))}

qsl = sl.to_quantized(group_size=32, bits=4)
cases["quantized_switch_linear"] = {
    "paths": [k for k, _ in tree_flatten(qsl.parameters())],
    "trainable": [k for k, _ in tree_flatten(qsl.trainable_parameters())],
    "out": encode(qsl(x, idx)),
}

glu = SwitchGLU(D, H, E)
glu_paths = load_formula(glu)
small = pattern((2, 3, D), 0.7)  # 12 pairs: unsorted path
big = pattern((4, 10, D), 0.9)  # 80 pairs: sorted path
big_idx = (mx.arange(80, dtype=mx.int32).reshape(4, 10, 2) * 7) % E
cases["switch_glu"] = {
    "paths": glu_paths,
    "small": encode(glu(small, idx)),
    "big": encode(glu(big, big_idx)),
}
nn.quantize(glu, group_size=32, bits=4)
cases["switch_glu_quantized"] = {
    "paths": [k for k, _ in tree_flatten(glu.parameters())],
    "small": encode(glu(small, idx)),
    "big": encode(glu(big, big_idx)),
}

base = nn.Linear(D, H, bias=True)
base.load_weights([("weight", pattern((H, D), 1.1, 0.3)), ("bias", pattern((H,), 1.2, 0.3))])
base.freeze()
lora = LoRALinear.from_base(base, r=4, dropout=0.0, scale=2.0)
lora.load_weights([("lora_a", pattern((D, 4), 1.3, 0.3)), ("lora_b", pattern((4, H), 1.4, 0.3))], strict=False)
xl = pattern((2, D), 1.5)
fused = lora.fuse()
qbase = nn.QuantizedLinear.from_linear(base, 32, 4)
qlora = LoRALinear.from_base(qbase, r=4, dropout=0.0, scale=2.0)
qlora.load_weights([("lora_a", pattern((D, 4), 1.3, 0.3)), ("lora_b", pattern((4, H), 1.4, 0.3))], strict=False)
qfused = qlora.fuse()
cases["lora"] = {
    "paths": [k for k, _ in tree_flatten(lora.parameters())],
    "trainable": [k for k, _ in tree_flatten(lora.trainable_parameters())],
    "out": encode(lora(xl)),
    "fused_out": encode(fused(xl)),
    "q_paths": [k for k, _ in tree_flatten(qlora.parameters())],
    "q_out": encode(qlora(xl)),
    "q_fused_out": encode(qfused(xl)),
    "q_fused_paths": [k for k, _ in tree_flatten(qfused.parameters())],
}

write("nn_moe", cases)
