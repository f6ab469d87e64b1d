"""Golden values for tests/transforms_golden.rs (see README.md beside this file).

Inputs are `pattern(shape, phase) = sin(i * 0.37 + phase)` in float32, computed by both sides.
"""

import math

import mlx.core as mx

from golden_common import encode, write


def pattern(shape, phase):
    n = math.prod(shape)
    return mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase).reshape(shape)


def loss(w, x):
    return mx.sum(mx.tanh(x @ w)) + 0.1 * mx.sum(w * w)


w = pattern((3, 2), 0.2)
x = pattern((4, 3), 1.0)
value, (gw, gx) = mx.value_and_grad(loss, argnums=(0, 1))(w, x)
cases = {"value_and_grad": {"value": encode(value), "grad_w": encode(gw), "grad_x": encode(gx)}}


def g(v):
    return [mx.sin(v) * v, mx.exp(v)]


v = pattern((5,), 0.3)
cot = [pattern((5,), 2.0), pattern((5,), 2.5)]
outs, vjps = mx.vjp(g, [v], cot)
cases["vjp"] = {"out0": encode(outs[0]), "out1": encode(outs[1]), "vjp": encode(vjps[0])}
tan = [pattern((5,), 0.9)]
outs, jvps = mx.jvp(g, [v], tan)
cases["jvp"] = {"jvp0": encode(jvps[0]), "jvp1": encode(jvps[1])}

m = pattern((4, 3), 0.4)
cases["vmap"] = {"out": encode(mx.vmap(lambda r: mx.sum(r * r), in_axes=0, out_axes=0)(m))}
cases["vmap_axis1"] = {"out": encode(mx.vmap(lambda c: mx.exp(c) * 2.0, in_axes=1, out_axes=1)(m))}

z = pattern((6,), 0.7) * 3.0
cases["grad_logsumexp"] = {"out": encode(mx.grad(lambda t: mx.logsumexp(t))(z))}

write("transforms", cases)
