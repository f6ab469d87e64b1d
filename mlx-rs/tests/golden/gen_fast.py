"""Golden values for tests/fast.rs (see README.md beside this file).

Inputs are a formula both sides compute, `pattern(shape, phase)`, so only outputs are stored.
Attention references are computed twice: by mx.fast and by explicit ops
(softmax(q kᵀ * scale + mask) v with K/V heads repeated for GQA).
"""

import math

import mlx.core as mx

from golden_common import encode, write


def pattern(shape, phase):
    n = math.prod(shape)
    i = mx.arange(n, dtype=mx.float32)
    return mx.sin(i * 0.37 + phase).reshape(shape)


cases = {}

x = pattern((2, 3, 16), 0.1)
w = pattern((16,), 0.7) + 1.5
b = pattern((16,), 1.3)
cases["rms_norm"] = {"out": encode(mx.fast.rms_norm(x, w, 1e-5))}
cases["rms_norm_no_weight"] = {"out": encode(mx.fast.rms_norm(x, None, 1e-5))}
cases["layer_norm"] = {"out": encode(mx.fast.layer_norm(x, w, b, 1e-5))}
cases["layer_norm_plain"] = {"out": encode(mx.fast.layer_norm(x, None, None, 1e-5))}

r = pattern((1, 2, 5, 16), 0.2)
cases["rope"] = {"out": encode(mx.fast.rope(r, 16, traditional=False, base=10000.0, scale=1.0, offset=3))}
cases["rope_traditional_partial"] = {
    "out": encode(mx.fast.rope(r, 8, traditional=True, base=500.0, scale=0.5, offset=0))}
cases["rope_array_offset"] = {
    "out": encode(mx.fast.rope(r, 16, traditional=False, base=10000.0, scale=1.0, offset=mx.array(7)))}
freqs = pattern((8,), 0.9) * 0.1 + 0.2
cases["rope_freqs"] = {
    "out": encode(mx.fast.rope(r, 16, traditional=False, base=None, scale=1.0, offset=2, freqs=freqs))}


def explicit_attention(q, k, v, scale, mask):
    heads, kv_heads = q.shape[1], k.shape[1]
    if heads != kv_heads:
        k = mx.repeat(k, heads // kv_heads, axis=1)
        v = mx.repeat(v, heads // kv_heads, axis=1)
    scores = (q * scale) @ k.swapaxes(-1, -2)
    if mask is not None:
        if mask.dtype == mx.bool_:
            scores = mx.where(mask, scores, -math.inf)
        else:
            scores = scores + mask
    return mx.softmax(scores, axis=-1, precise=True) @ v


D = 8
for L, kvh in [(1, 2), (127, 2), (128, 2), (129, 2), (128, 4), (1, 1)]:
    q = pattern((1, 4, L, D), 0.3)
    k = pattern((1, kvh, L, D), 1.1)
    v = pattern((1, kvh, L, D), 2.3)
    scale = 1.0 / math.sqrt(D)
    tag = f"L{L}_kv{kvh}"
    causal = mx.tril(mx.ones((L, L), dtype=mx.bool_))
    masks = {"none": (None, None), "causal": ("causal", causal)}
    if L in (1, 128):
        # The same formulas as the Rust test: keep (i + j) % 3 != 1; add pattern((L, L), 0.5).
        keep = (mx.arange(L)[:, None] + mx.arange(L)[None, :]) % 3 != 1
        masks["bool"] = (keep, keep)
        masks["additive"] = (pattern((L, L), 0.5),) * 2
    for name, (fast_mask, explicit_mask) in masks.items():
        fast = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=fast_mask)
        explicit = explicit_attention(q, k, v, scale, explicit_mask)
        assert mx.allclose(fast, explicit, rtol=1e-4, atol=1e-5).item(), (name, tag)
        cases[f"sdpa_{name}_{tag}"] = {"out": encode(explicit)}

q = pattern((1, 4, 6, D), 0.3)
k = pattern((1, 2, 6, D), 1.1)
v = pattern((1, 2, 6, D), 2.3)
sinks = pattern((4,), 0.4)
cases["sdpa_sinks"] = {"out": encode(
    mx.fast.scaled_dot_product_attention(q, k, v, scale=0.35, mask="causal", sinks=sinks))}

logits = pattern((3, 5), 0.6) * 3.0
targets = mx.array([0, 4, 2], dtype=mx.int32)
if hasattr(mx.fast, "cross_entropy"):
    ce = mx.fast.cross_entropy(logits, targets)
else:
    ce = mx.logsumexp(logits, axis=-1) - mx.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
cases["cross_entropy"] = {"out": encode(ce), "fast": hasattr(mx.fast, "cross_entropy")}

write("fast", cases)
