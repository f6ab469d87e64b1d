"""Shared encoding for the golden-value generators (see README.md beside this file)."""

import json
import math
import os

import mlx.core as mx


def _number(x):
    if isinstance(x, bool):
        return x
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def encode(a):
    """An MLX array (or Python scalar) as {"dtype", "shape", "data"} in row-major order."""
    if not isinstance(a, mx.array):
        a = mx.array(a)
    mx.eval(a)
    dtype = str(a.dtype).replace("mlx.core.", "")
    flat = a.reshape(-1)
    if a.dtype == mx.complex64:
        data = [[_number(float(v.real)), _number(float(v.imag))] for v in flat.tolist()]
    elif a.dtype in (mx.float16, mx.bfloat16, mx.float32):
        # 9 significant digits round-trip every float32 exactly and keep the files small.
        data = [_number(float(f"{v:.9g}")) for v in flat.astype(mx.float32).tolist()]
    else:
        data = [_number(v) for v in flat.tolist()]
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def write(family, cases):
    """Writes `cases` (name -> dict of encoded arrays and plain values) to <family>.json."""
    assert mx.__version__ == "0.32.2", f"goldens must come from MLX 0.32.2, not {mx.__version__}"
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{family}.json")
    with open(path, "w") as f:
        json.dump(cases, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")
