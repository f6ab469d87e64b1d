"""Golden values for tests/quantization.rs (see README.md beside this file)."""

import mlx.core as mx

from golden_common import encode, write

w = (mx.arange(4 * 64, dtype=mx.float32).reshape(4, 64) % 17 - 8.0) / 8.0
x = (mx.arange(3 * 64, dtype=mx.float32).reshape(3, 64) % 5 - 2.0) / 4.0
cases = {"w": {"out": encode(w)}, "x": {"out": encode(x)}}

for mode, gs, bits in [("affine", None, None), ("affine", 32, 8), ("mxfp4", None, None), ("mxfp8", None, None), ("nvfp4", None, None)]:
    kw = {"mode": mode}
    if gs is not None:
        kw["group_size"] = gs
        kw["bits"] = bits
    parts = mx.quantize(w, **kw)
    name = f"{mode}_{gs}_{bits}"
    entry = {"weights": encode(parts[0]), "scales": encode(parts[1])}
    if len(parts) > 2 and parts[2] is not None:
        entry["biases"] = encode(parts[2])
    biases = parts[2] if len(parts) > 2 else None
    entry["dequantized"] = encode(mx.dequantize(parts[0], parts[1], biases, **kw))
    entry["qmm"] = encode(mx.quantized_matmul(x, parts[0], parts[1], biases, transpose=True, **kw))
    cases[name] = entry

a = mx.arange(2 * 3 * 4, dtype=mx.float32).reshape(2, 3, 4) / 10.0
b = mx.arange(3 * 4 * 5, dtype=mx.float32).reshape(3, 4, 5) / 10.0
lhs = mx.array([0, 1, 1], dtype=mx.uint32)
rhs = mx.array([2, 0, 1], dtype=mx.uint32)
cases["gather_mm"] = {"a": encode(a), "b": encode(b), "lhs": encode(lhs), "rhs": encode(rhs),
                      "out": encode(mx.gather_mm(a, b, lhs, rhs))}

m = mx.arange(64 * 64, dtype=mx.float32).reshape(64, 64) % 7 / 7.0
mask = mx.array([[True, False], [False, True]])
cases["block_masked_mm"] = {"a": encode(m), "mask": encode(mask),
                            "out": encode(mx.block_masked_mm(m, m, 32, mask))}

sa = mx.arange(2 * 6, dtype=mx.float32).reshape(2, 6)
sb = mx.arange(6 * 3, dtype=mx.float32).reshape(6, 3)
seg = mx.array([[0, 2], [2, 6]], dtype=mx.uint32)
cases["segmented_mm"] = {"a": encode(sa), "b": encode(sb), "segments": encode(seg),
                         "out": encode(mx.segmented_mm(sa, sb, seg))}

f = mx.array([0.0, 0.5, -1.25, 3.0, 448.0, -0.0078125], dtype=mx.float32)
q8 = mx.to_fp8(f)
cases["fp8"] = {"x": encode(f), "packed": encode(q8), "back": encode(mx.from_fp8(q8, mx.float32))}

write("quantization", cases)
