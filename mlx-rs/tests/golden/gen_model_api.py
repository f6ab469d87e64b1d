"""Golden values for tests/model_api.rs (see README.md beside this file): parameter trees
(mlx.utils tree_flatten / tree_unflatten / tree_merge paths) and gradients over a tree
(mx.value_and_grad of a function of a dict of parameters).

Inputs are `pattern(shape, phase) = sin(i * 0.37 + phase)` in float32, computed by both sides.
"""

import math

import mlx.core as mx
from mlx.utils import tree_flatten, tree_merge, tree_unflatten

from golden_common import encode, write


def pattern(shape, phase):
    n = math.prod(shape)
    return mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase).reshape(shape)


# A model-shaped tree: nested dicts and a list of layers, keys in insertion order.
params = {
    "embed": {"weight": pattern((5, 4), 0.1)},
    "layers": [
        {"attn": {"q_proj": {"weight": pattern((4, 4), 0.2 + i)}}, "norm": {"weight": pattern((4,), 0.3 + i)}}
        for i in range(2)
    ],
    "head": {"weight": pattern((3, 4), 0.4), "bias": pattern((3,), 0.5)},
}
flat = tree_flatten(params)
cases = {"flatten": {"paths": [k for k, _ in flat]}}

# Unflatten of a shuffled flat list (list indices out of order, a gap filled with an empty dict).
shuffled = [("b.1.x", mx.array(1.0)), ("a", mx.array(2.0)), ("b.0.y", mx.array(3.0)), ("c.2", mx.array(4.0))]
back = tree_unflatten(shuffled)
cases["unflatten"] = {
    "paths": [k for k, _ in tree_flatten(back)],
    "c_len": len(back["c"]),
    "c_gap_is_empty_dict": back["c"][0] == {} and back["c"][1] == {},
}

# Merge (dicts by key, lists by position, longer list's tail kept).
a = {"m": {"a": mx.array(1.0)}, "l": [mx.array(1.0)]}
b = {"m": {"b": mx.array(2.0)}, "l": [{}, mx.array(6.0)]}
merged = tree_merge(a, b)
cases["merge"] = {"paths": sorted(k for k, _ in tree_flatten(merged))}


# Gradient over the tree: a two-layer model's loss.
def loss(p, x, y):
    h = x @ p["embed"]["weight"].T @ p["embed"]["weight"]
    for layer in p["layers"]:
        h = mx.tanh(h @ layer["attn"]["q_proj"]["weight"].T) * layer["norm"]["weight"]
    out = h @ p["head"]["weight"].T + p["head"]["bias"]
    return mx.mean(mx.square(out - y))


x = pattern((6, 4), 0.6)
y = pattern((6, 3), 0.7)
value, grads = mx.value_and_grad(loss)(params, x, y)
cases["value_and_grad"] = {"value": encode(value)}
for k, g in tree_flatten(grads):
    cases["value_and_grad"]["grad." + k] = encode(g)

write("model_api", cases)
