"""Golden values for tests/kv_cache.rs (see README.md beside this file): the KV caches of
mlx-lm 0.32.0 (`mlx_lm/models/cache.py`), its quantized attention
(`mlx_lm/models/base.py: quantized_scaled_dot_product_attention`) and its prompt-cache file
format (`save_prompt_cache`), run on the classes of the mlx-lm package itself.

Needs `pip install mlx-lm==0.32.0 --no-deps`: only `mlx_lm.models.cache` and `mlx_lm.models.base`
are imported (the package's `__init__` pulls in transformers and huggingface_hub, which the
caches do not use, so it is bypassed).

Each cache case is a script of operations (`update` with `n` new tokens, `trim`, `mask`) that the
Rust test replays; after every operation the cache's offset, internal buffer shape and the
fetched keys/values are recorded. The k-th update's keys are `pattern((B, H, n, D), k)` and its
values `pattern((B, H, n, D), k + 0.5)` with `pattern(shape, phase) = sin(i * 0.37 + phase)` in
float32, computed by both sides.
"""

import importlib.util
import math
import os
import sys
import types

import mlx.core as mx

from golden_common import encode, write

spec = importlib.util.find_spec("mlx_lm")
assert spec is not None, "pip install mlx-lm==0.32.0 --no-deps"
_pkg = types.ModuleType("mlx_lm")
_pkg.__path__ = list(spec.submodule_search_locations)
sys.modules["mlx_lm"] = _pkg
import mlx_lm.models.base as base  # noqa: E402
import mlx_lm.models.cache as cache  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def pattern(shape, phase):
    n = math.prod(shape)
    return mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase).reshape(shape)


def digest(a):
    """Shape, sum and a position-weighted sum (in float64) of a large array."""
    flat = a.reshape(-1).tolist()
    return {
        "shape": list(a.shape),
        "sum": math.fsum(flat),
        "weighted": math.fsum(x * math.cos(i * 0.01) for i, x in enumerate(flat)),
    }


def encode_mask(m):
    if m is None:
        return {"kind": "none"}
    if isinstance(m, str):
        return {"kind": m}
    return {"kind": "array", "array": encode(m)}


def run_script(c, dims, script, quantized=False):
    B, H, D = dims
    records = []
    k = 0
    for op in script:
        rec = {}
        if op["op"] == "update":
            keys = pattern((B, H, op["n"], D), float(k))
            values = pattern((B, H, op["n"], D), float(k) + 0.5)
            k += 1
            fk, fv = c.update_and_fetch(keys, values)
            if quantized:
                rec["buffer_shape"] = list(c.keys[0].shape)
                rec["fetched_shape"] = list(fk[0].shape)
                for name, parts in (("keys", fk), ("values", fv)):
                    for part, a in zip(("w", "scales", "biases"), parts):
                        if op.get("check"):
                            rec[f"{name}.{part}"] = encode(a)
                        else:
                            rec[f"{name}.{part}_digest"] = digest(a)
            else:
                rec["buffer_shape"] = list(c.keys.shape)
                for name, a in (("keys", fk), ("values", fv)):
                    if op.get("check") or a.size <= 128:
                        rec[name] = encode(a)
                    else:
                        rec[name + "_digest"] = digest(a)
        elif op["op"] == "trim":
            rec["trimmed"] = c.trim(op["n"])
        elif op["op"] == "mask":
            rec["mask"] = encode_mask(
                c.make_mask(op["n"], window_size=op.get("window"), return_array=op.get("return_array", False))
            )
        rec["offset"] = c.offset
        if hasattr(c, "_idx"):
            rec["idx"] = c._idx
        rec["trimmable"] = c.is_trimmable()
        records.append(rec)
    return records


def up(n, check=False):
    return {"op": "update", "n": n, "check": check}


def mask(n, window=None, return_array=False):
    return {"op": "mask", "n": n, "window": window, "return_array": return_array}


cases = {}
dims = (1, 2, 3)

# KVCache: prefill below a block, decode across the 256 boundary, trim, a multi-token update;
# masks along the way.
script = [up(250), mask(1), mask(4), mask(4, return_array=True), mask(3, window=5)]
script += [up(1) for _ in range(8)]
script[-1] = up(1, True)
script += [{"op": "trim", "n": 3}, up(2, True), {"op": "trim", "n": 1000}, up(5)]
cases["kv_decode"] = {"dims": list(dims), "script": script, "records": run_script(cache.KVCache(), dims, script)}

# KVCache: prefills of several blocks, the second one not block-aligned.
script = [up(300), up(300, True), up(1), {"op": "trim", "n": 100}, up(40, True)]
cases["kv_prefill"] = {"dims": list(dims), "script": script, "records": run_script(cache.KVCache(), dims, script)}

# RotatingKVCache: prefill larger than the window, then single-token decode (rotation), then a
# multi-token update after rotation.
for name, max_size, keep, script in [
    ("rot_prefill_big", 16, 4, [up(20), mask(1), mask(1, window=8)] + [up(1) for _ in range(6)]
     + [mask(3), mask(1, window=8), up(3), up(1), up(1), mask(2, window=8)]),
    ("rot_grow_decode", 16, 4, [up(5)] + [up(1) for _ in range(14)] + [{"op": "trim", "n": 2}, up(1)]
     + [up(1) for _ in range(6)] + [mask(1, window=6), up(2), up(1)]),
    ("rot_trim", 16, 0, [up(6), {"op": "trim", "n": 2}, up(1), up(3), {"op": "trim", "n": 1}, up(1),
                         mask(3), mask(3, window=4), up(12), up(1), up(1)]),
    ("rot_keep0_decode", 8, 0, [up(3)] + [up(1) for _ in range(12)] + [up(4), up(1), up(1)]),
    ("rot_big_window", 300, 4, [up(1)] + [up(1) for _ in range(260)] + [up(30), up(1)] + [up(1) for _ in range(12)]),
]:
    cases[name] = {
        "dims": list(dims),
        "max_size": max_size,
        "keep": keep,
        "script": script,
        "records": run_script(cache.RotatingKVCache(max_size=max_size, keep=keep), dims, script),
    }

# QuantizedKVCache (default group 64, 8 bits; and group 32, 4 bits).
qdims = (1, 2, 64)
for name, gs, bits in [("quant_8", 64, 8), ("quant_4", 32, 4)]:
    script = [up(250)] + [up(1) for _ in range(7)] + [up(1), {"op": "trim", "n": 2}, up(3, True), mask(1), mask(3)]
    cases[name] = {
        "dims": list(qdims),
        "group_size": gs,
        "bits": bits,
        "script": script,
        "records": run_script(cache.QuantizedKVCache(group_size=gs, bits=bits), qdims, script, quantized=True),
    }

# Quantized attention (GQA: 4 query heads over 2 KV heads; and 2 over 2).
for heads in (4, 2):
    for L in (1, 5):
        for gs, bits in ((64, 8), (32, 4)):
            T = 12
            q = pattern((1, heads, L, 64), 0.25)
            kk = pattern((1, 2, T, 64), 1.0)
            vv = pattern((1, 2, T, 64), 2.0)
            qk = mx.quantize(kk, group_size=gs, bits=bits)
            qv = mx.quantize(vv, group_size=gs, bits=bits)
            bool_mask = (mx.arange(T)[None] % 3) != (mx.arange(L)[:, None] % 3)
            add_mask = pattern((L, T), 0.75)
            for mname, m in (("none", None), ("causal", "causal"), ("bool", bool_mask), ("additive", add_mask)):
                if L == 1 and mname == "causal":
                    continue
                # mlx-lm scales `queries` in place (`queries *= scale`): pass a fresh array each time.
                out = base.quantized_scaled_dot_product_attention(mx.array(q), qk, qv, scale=0.125, mask=m, group_size=gs, bits=bits)
                cases[f"qsdpa_h{heads}_l{L}_g{gs}_b{bits}_{mname}"] = {
                    "heads": heads, "L": L, "T": T, "group_size": gs, "bits": bits, "mask": mname, "out": encode(out),
                }

# A prompt cache written by mlx-lm's save_prompt_cache (the Rust test loads it and writes the same
# caches, then compares the files entry by entry).
def fill(c, dims, ns):
    B, H, D = dims
    for k, n in enumerate(ns):
        c.update_and_fetch(pattern((B, H, n, D), float(k)), pattern((B, H, n, D), float(k) + 0.5))
    return c


prompt = [
    fill(cache.KVCache(), dims, [260, 1]),
    fill(cache.RotatingKVCache(max_size=16, keep=4), dims, [20, 1, 1]),
    fill(cache.QuantizedKVCache(), qdims, [7, 1]),
    cache.KVCache(),
]
path = os.path.join(HERE, "kv_cache", "prompt_cache.safetensors")
cache.save_prompt_cache(path, prompt, {"model": "tiny", "note": "written by mlx-lm 0.32.0"})
arrays, metadata = mx.load(path, return_metadata=True)
cases["prompt_file"] = {
    "metadata": metadata,
    "arrays": {k: {"dtype": str(v.dtype).replace("mlx.core.", ""), "shape": list(v.shape)} for k, v in arrays.items()},
}
# Python loads what the Rust test writes when that file exists (a check run by hand:
# `python3 gen_kv_cache.py --check-rust PATH`).
if len(sys.argv) == 3 and sys.argv[1] == "--check-rust":
    loaded, meta = cache.load_prompt_cache(sys.argv[2], return_metadata=True)
    print("loaded", [type(c).__name__ for c in loaded], meta)
    for a, b in zip(loaded, prompt):
        sa, sb = a.state, b.state
        from mlx.utils import tree_flatten
        fa, fb = tree_flatten(sa), tree_flatten(sb)
        assert [k for k, _ in fa] == [k for k, _ in fb]
        for (k, x), (_, y) in zip(fa, fb):
            if isinstance(y, mx.array):
                assert x.dtype == y.dtype and x.shape == y.shape and mx.array_equal(x, y).item(), k
            else:
                assert x == y, (k, x, y)
    print("rust-written prompt cache matches")
    sys.exit(0)

write("kv_cache", cases)
