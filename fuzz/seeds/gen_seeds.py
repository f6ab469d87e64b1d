"""Writes the starting seeds of the fuzz corpora (fuzz/corpus/<target>/seed-*).

Valid files of each format, written by Python MLX 0.32.2 (safetensors, GGUF, .npy) or by hand
where MLX cannot write them (GGUF tensors of the quantized types Q4_0, Q4_1 and Q8_0, .npy of
other header versions and orders), plus random bytes for the op fuzzer. The fuzzers grow the
corpora from these; `cargo fuzz cmin` then keeps what adds coverage. Run from fuzz/:
`python3 seeds/gen_seeds.py`.
"""

import os
import random
import struct

import mlx.core as mx
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, f"seed-{name}"), "wb") as f:
        f.write(data)


def saved(write, suffix):
    path = f"/tmp/mlx-rs-seed{suffix}"
    write(path)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def small_arrays():
    yield "f32", mx.array([[1.0, -2.0, 3.5], [0.0, 4.0, -1.0]], dtype=mx.float32)
    yield "f16", mx.array([1.0, 2.0, -0.5, 65504.0], dtype=mx.float16)
    yield "bf16", mx.array([[1.0], [3.0]], dtype=mx.bfloat16)
    yield "i32", mx.array([1, -2, 3, 2147483647], dtype=mx.int32)
    yield "u8", mx.array([[0, 255], [7, 9]], dtype=mx.uint8)
    yield "i64", mx.array([5, -6], dtype=mx.int64)
    yield "bool", mx.array([True, False, True])
    yield "scalar", mx.array(2.5)
    yield "empty", mx.zeros((0, 3))
    yield "u16", mx.array([1, 2, 3], dtype=mx.uint16)


def safetensors_seeds():
    arrays = dict(small_arrays())
    put("safetensors", "all", saved(lambda p: mx.save_safetensors(p, arrays, {"format": "mlx"}), ".safetensors"))
    for name, a in small_arrays():
        put("safetensors", name, saved(lambda p: mx.save_safetensors(p, {"w": a}), ".safetensors"))
    put("safetensors", "c64", saved(lambda p: mx.save_safetensors(p, {"c": mx.array([1 + 2j])}), ".safetensors"))
    put("safetensors", "nothing", saved(lambda p: mx.save_safetensors(p, {}), ".safetensors"))


def npy_seeds():
    for name, a in small_arrays():
        put("npy", name, saved(lambda p: mx.save(p, a), ".npy"))
    put("npy", "c64", saved(lambda p: mx.save(p, mx.array([1 + 2j, 3j])), ".npy"))
    # numpy writes big-endian, Fortran-order and version 2/3 headers MLX must read or refuse.
    for name, a, kw in [
        ("fortran", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)), {}),
        ("big_endian", np.arange(4, dtype=">i4"), {}),
        ("f64", np.array([1.5, -2.0]), {}),
        ("i8", np.array([-1, 2], dtype=np.int8), {}),
    ]:
        path = "/tmp/mlx-rs-seed.npy"
        np.save(path, a, **kw)
        put("npy", name, open(path, "rb").read())
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    header += b" " * (64 - 12 - len(header) - 1) + b"\n"
    put("npy", "v2", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + b"\x00" * 8)


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(tensors, metadata=b"", n_metadata=0, align=32):
    """A GGUF v3 file: `tensors` is a list of (name, dims, ggml type, data bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), n_metadata) + metadata
    offset = 0
    blobs = []
    for name, dims, kind, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", kind, offset)
        blobs.append(data)
        offset += len(data)
        offset += (-offset) % align
    out += b"\x00" * ((-len(out)) % align)
    for data in blobs:
        out += data + b"\x00" * ((-len(data)) % align)
    return out


def gguf_seeds():
    arrays = {k: v for k, v in small_arrays() if k in ("f32", "f16", "i32")}
    meta = {
        "general.name": "tiny",
        "tokens": ["a", "b", "c"],
        "count": mx.array(3, dtype=mx.uint32),
        "scale": mx.array([0.5, 1.5], dtype=mx.float32),
    }
    put("gguf", "mlx", saved(lambda p: mx.save_gguf(p, arrays, meta), ".gguf"))
    for name, a in arrays.items():
        put("gguf", name, saved(lambda p: mx.save_gguf(p, {"w": a}, {}), ".gguf"))
    rng = random.Random(0)
    blocks = {
        2: 2 + 16,  # Q4_0: f16 scale + 32 nibbles
        3: 2 + 2 + 16,  # Q4_1: f16 scale + f16 min + 32 nibbles
        8: 2 + 32,  # Q8_0: f16 scale + 32 bytes
    }
    for kind, size in blocks.items():
        data = b"".join(struct.pack("<e", 0.5) + bytes(rng.randrange(256) for _ in range(size - 2)) for _ in range(2))
        put("gguf", f"type{kind}", gguf_file([("q", [64], kind, data)]))
    align = gguf_string("general.alignment") + struct.pack("<II", 4, 64)
    put("gguf", "aligned", gguf_file([("w", [2, 2], 0, struct.pack("<4f", 1, 2, 3, 4))], align, 1, 64))


def ops_seeds():
    rng = random.Random(13)
    for i in range(48):
        put("ops", f"{i:02}", bytes(rng.randrange(256) for _ in range(rng.randrange(16, 160))))


safetensors_seeds()
npy_seeds()
gguf_seeds()
ops_seeds()
