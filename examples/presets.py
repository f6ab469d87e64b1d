"""The Python twin of `mlx_lm::presets` (mlx-lm/src/presets.rs): the same random weights from
the same seed, drawn with the same MLX calls in the same order, for mlx-lm 0.32.0's own model
files. Used by `python_single_seqlen.py` and `python_generate.py`.

    import presets
    config = presets.config("mistral-7b-4bit")
    model = presets.random_model(config, seed=0)
    print(f"weights checksum: {presets.checksum(model):016x}")
"""

import importlib
import importlib.util
import json
import math
import pathlib
import struct
import sys
import types

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

PRESETS = pathlib.Path(__file__).resolve().parent.parent / "mlx-lm" / "presets"
REMAPPING = {"mistral": "llama"}


def mlx_lm_module(name):
    """`mlx_lm.<name>`, imported without the package's `__init__` (which needs transformers)."""
    if "mlx_lm" not in sys.modules:
        spec = importlib.util.find_spec("mlx_lm")
        if spec is None:
            raise SystemExit("mlx-lm is not installed: pip install mlx-lm==0.32.0 --no-deps")
        package = types.ModuleType("mlx_lm")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["mlx_lm"] = package
    return importlib.import_module(f"mlx_lm.{name}")


def config(name):
    """The preset's config.json as a dict (or that of a config file `name` ending in .json)."""
    path = pathlib.Path(name) if name.endswith(".json") else PRESETS / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.json")))
        raise SystemExit(f"unknown preset `{name}` (known: {known})")
    return json.loads(path.read_text())


def build_model(config):
    """mlx-lm's model for `config`, its layers quantized as the config says (unevaluated)."""
    model_type = REMAPPING.get(config["model_type"], config["model_type"])
    arch = mlx_lm_module(f"models.{model_type}")
    model = arch.Model(arch.ModelArgs.from_dict(config))
    q = config.get("quantization")
    if q is not None:

        def predicate(path, module):
            if path in q:
                return q[path]
            return hasattr(module, "to_quantized")

        nn.quantize(model, q["group_size"], q["bits"], mode=q.get("mode", "affine"),
                    class_predicate=predicate)
    return model


def _bits_of(config, prefix):
    q = config["quantization"]
    entry = q.get(prefix, q)
    if entry.get("mode", "affine") != "affine":
        raise ValueError(f"`{prefix}`: presets draw affine weights only")
    return entry["bits"]


def _raw_bits(shape, key):
    """Random uint32 codes: threefry's raw output, as `mx.random.split` gives it (Python has
    no `random.bits`)."""
    n = math.prod(shape)
    return mx.random.split(key, num=(n + 1) // 2).reshape(-1)[:n].reshape(shape)


FLOATS = {"bfloat16": mx.bfloat16, "float16": mx.float16, "float32": mx.float32}


def random_model(config, seed):
    """The preset's model with every parameter drawn from `seed` (rules in presets.rs)."""
    name = config.get("torch_dtype") or "bfloat16"
    if name not in FLOATS:
        raise SystemExit(f"torch_dtype `{name}` (expected bfloat16, float16 or float32)")
    float_dtype = FLOATS[name]
    model = build_model(config)
    params = sorted(tree_flatten(model.parameters()))
    shapes = {p: a.shape for p, a in params}
    drawn = []
    scales_of = {}
    base = seed * 1_000_000
    for i, (path, p) in enumerate(params):
        key = mx.random.key(base + i)
        shape = p.shape
        if p.dtype == mx.uint32:
            value = _raw_bits(shape, key)
        elif path.endswith(".scales"):
            prefix = path[: -len(".scales")]
            bits = _bits_of(config, prefix)
            in_dims = max(shapes[f"{prefix}.weight"][-1] * 32 // bits, shape[-1])
            s = 2.0 * math.sqrt(3.0) / (math.sqrt(in_dims) * ((1 << bits) - 1))
            value = mx.random.normal(shape, mx.float32, s, s / 10.0, key=key).astype(float_dtype)
            scales_of[prefix] = (value, bits)
        elif path.endswith(".biases") and f"{path[: -len('.biases')]}.scales" in shapes:
            continue
        elif path.endswith("norm.weight"):
            value = mx.ones(shape, dtype=float_dtype)
        elif path.endswith("e_score_correction_bias"):
            value = mx.random.normal(shape, mx.float32, 0.0, 0.01, key=key)
        else:
            last = max(shape[-1] if shape else 1, 1)
            value = mx.random.normal(shape, mx.float32, 0.0, 1.0 / math.sqrt(last), key=key)
            value = value.astype(float_dtype)
        mx.eval(value)
        drawn.append((path, value))
    for prefix, (scales, bits) in sorted(scales_of.items()):
        half = ((1 << bits) - 1) / 2.0
        biases = (scales.astype(mx.float32) * -half).astype(float_dtype)
        mx.eval(biases)
        drawn.append((f"{prefix}.biases", biases))
    model.update(tree_unflatten(drawn))
    return model


def checksum(model):
    """As `mlx_lm::presets::weights_checksum`: FNV-1a 64 over the little-endian bytes of each
    parameter's float32 sum, in sorted path order."""
    h = 0xCBF29CE484222325
    for _, p in sorted(tree_flatten(model.parameters())):
        for byte in struct.pack("<f", p.astype(mx.float32).sum().item()):
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h
