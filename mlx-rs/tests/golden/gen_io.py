"""Fixtures and golden values for tests/io.rs: files written by Python MLX 0.32.2.

Writes small .safetensors, .npy and .gguf files under io/ (each well under 20 KB) and, in io.json,
what Python MLX loads back from them. Run: python3 tests/golden/gen_io.py
"""

import os

import mlx.core as mx

from golden_common import encode, write

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "io")
os.makedirs(OUT, exist_ok=True)


def path(name):
    return os.path.join(OUT, name)


cases = {}

# safetensors: one array per dtype MLX writes, plus metadata.
tensors = {
    "bool": mx.array([[True, False, True], [False, False, True]]),
    "uint8": mx.array([0, 1, 127, 255], dtype=mx.uint8),
    "uint16": mx.array([0, 65535, 12], dtype=mx.uint16),
    "uint32": mx.array([0, 4000000000, 7], dtype=mx.uint32),
    "uint64": mx.array([0, 2**40, 9], dtype=mx.uint64),
    "int8": mx.array([-128, 0, 127], dtype=mx.int8),
    "int16": mx.array([-32768, 5, 32767], dtype=mx.int16),
    "int32": mx.arange(-6, 6, dtype=mx.int32).reshape(3, 4),
    "int64": mx.array([-(2**40), 0, 2**40], dtype=mx.int64),
    "float16": mx.array([0.5, -1.25, 65504.0], dtype=mx.float16),
    "bfloat16": mx.array([1.0, -2.5, 3.0e30], dtype=mx.bfloat16),
    "float32": (mx.arange(24, dtype=mx.float32) / 7.0).reshape(2, 3, 4),
    "complex64": mx.array([1 + 2j, -3.5 + 0.25j]),
    "scalar": mx.array(3.25),
}
metadata = {"format": "mlx", "note": "golden fixture", "empty": ""}
mx.save_safetensors(path("arrays.safetensors"), tensors, metadata)
loaded, meta = mx.load(path("arrays.safetensors"), return_metadata=True)
cases["safetensors"] = {
    "arrays": {k: encode(v) for k, v in loaded.items()},
    "metadata": meta,
}

# npy: one array per file.
npys = {
    "f32.npy": (mx.arange(6, dtype=mx.float32) - 2.5).reshape(2, 3),
    "i64.npy": mx.array([[1, -2], [3, 2**33]], dtype=mx.int64),
    "bool.npy": mx.array([True, False, True]),
    "f16.npy": mx.array([0.1, 0.2, -8.0], dtype=mx.float16),
    "scalar.npy": mx.array(7, dtype=mx.int32),
}
cases["npy"] = {}
for name, a in npys.items():
    mx.save(path(name), a)
    cases["npy"][name] = encode(mx.load(path(name)))

# gguf: arrays and every kind of metadata MLX represents.
gguf_arrays = {
    "blk.0.weight": (mx.arange(12, dtype=mx.float32) / 4.0).reshape(3, 4),
    "blk.0.bias": mx.array([1.0, -1.0, 0.5], dtype=mx.float16),
    "token_ids": mx.array([5, 6, 7], dtype=mx.int32),
}
gguf_meta = {
    "general.name": "tiny golden",
    "tokenizer.tokens": ["<s>", "hello", "world"],
    "answer": mx.array(42, dtype=mx.int32),
    "scale": mx.array(0.5, dtype=mx.float32),
    "dims": mx.array([1, 2, 3], dtype=mx.uint32),
}
mx.save_gguf(path("model.gguf"), gguf_arrays, gguf_meta)
garrays, gmeta = mx.load(path("model.gguf"), return_metadata=True)
enc_meta = {}
for k, v in gmeta.items():
    if isinstance(v, mx.array):
        enc_meta[k] = {"array": encode(v)}
    elif isinstance(v, str):
        enc_meta[k] = {"string": v}
    else:
        enc_meta[k] = {"strings": list(v)}
cases["gguf"] = {
    "arrays": {k: encode(v) for k, v in garrays.items()},
    "metadata": enc_meta,
}

for name in sorted(os.listdir(OUT)):
    size = os.path.getsize(path(name))
    assert size < 20_000, f"{name} is {size} bytes"
    print(f"{name}: {size} bytes")

write("io", cases)
