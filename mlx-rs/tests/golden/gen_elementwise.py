"""Golden values for the element-wise ops (tests/elementwise.rs).

Each case holds its inputs ("a", "b", bounds, ...), the name of the op ("op"), its plain
arguments, and the result ("out"; divmod also "out2"). Run with MLX 0.32.2:

    python3 mlx-rs/tests/golden/gen_elementwise.py
"""

import math

import mlx.core as mx

from golden_common import encode, write

mx.set_default_device(mx.cpu)

cases = {}


def dtype_of(name):
    return mx.bool_ if name == "bool" else getattr(mx, name)


def case(name, op, out, **inputs):
    assert name not in cases, name
    entry = {"op": op}
    for key, value in inputs.items():
        entry[key] = encode(value) if isinstance(value, mx.array) else value
    if isinstance(out, (tuple, list)):
        entry["out"], entry["out2"] = encode(out[0]), encode(out[1])
    else:
        entry["out"] = encode(out)
    cases[name] = entry


f23 = mx.array([[-2.5, -0.5, 0.0], [0.75, 1.5, 3.0]], dtype=mx.float32)
f3 = mx.array([1.5, -2.0, 0.25], dtype=mx.float32)
pos23 = mx.array([[0.25, 0.5, 1.0], [2.0, 4.0, 9.0]], dtype=mx.float32)
unit23 = mx.array([[-0.9, -0.5, 0.0], [0.25, 0.5, 0.75]], dtype=mx.float32)
ge1 = mx.array([[1.0, 1.5, 2.0], [3.0, 5.0, 10.0]], dtype=mx.float32)
halves = mx.array([[-2.5, -1.5, -0.5], [0.5, 1.5, 2.345]], dtype=mx.float32)
i23 = mx.array([[-7, -3, 0], [2, 5, 9]], dtype=mx.int32)
i3 = mx.array([2, -3, 4], dtype=mx.int32)
u8 = mx.array([0, 7, 200, 255], dtype=mx.uint8)
i8 = mx.array([-128, -1, 5, 127], dtype=mx.int8)
b4 = mx.array([True, True, False, False])
c4 = mx.array([False, True, False, True])
special = mx.array([math.nan, math.inf, -math.inf, 0.0, -1.5], dtype=mx.float32)
z2 = mx.array([1 + 2j, -3 + 0.5j], dtype=mx.complex64)
s = mx.array(2.0, dtype=mx.float32)

# --- binary arithmetic: broadcasting (2,3) with (3,) and with a scalar, floats and ints ---
binary = {
    "add": mx.add,
    "subtract": mx.subtract,
    "multiply": mx.multiply,
    "divide": mx.divide,
    "floor_divide": mx.floor_divide,
    "remainder": mx.remainder,
    "power": mx.power,
    "maximum": mx.maximum,
    "minimum": mx.minimum,
    "logaddexp": mx.logaddexp,
    "arctan2": mx.arctan2,
}
for name, fn in binary.items():
    case(f"{name}_f32_bcast", name, fn(f23, f3), a=f23, b=f3)
    case(f"{name}_f32_scalar", name, fn(f23, s), a=f23, b=s)
    case(f"{name}_f32_scalar_left", name, fn(s, f23), a=s, b=f23)
for name in ["add", "subtract", "multiply", "divide", "floor_divide", "remainder", "maximum",
             "minimum"]:
    case(f"{name}_i32_bcast", name, binary[name](i23, i3), a=i23, b=i3)
case("power_i32", "power", mx.power(i3, mx.array([3, 2, 0])), a=i3, b=mx.array([3, 2, 0]))
case("power_f32_fractional", "power", mx.power(pos23, mx.array(0.5)), a=pos23, b=mx.array(0.5))
case("maximum_nan", "maximum", mx.maximum(special, mx.array(0.0)), a=special, b=mx.array(0.0))
case("add_complex", "add", mx.add(z2, z2), a=z2, b=z2)
case("multiply_complex", "multiply", mx.multiply(z2, z2), a=z2, b=z2)
case("divide_complex", "divide", mx.divide(z2, mx.array(2 - 1j)), a=z2, b=mx.array(2 - 1j))

# --- type promotion ---
promotions = [
    ("int32_float32", i3, f3),
    ("int32_bool", i3, mx.array([True, False, True])),
    ("uint8_int8", u8, i8),
    ("float16_float32", f3.astype(mx.float16), f3),
    ("bfloat16_float16", f3.astype(mx.bfloat16), f3.astype(mx.float16)),
    ("bool_bool", b4, c4),
    ("uint32_int32", mx.array([1, 2, 3], dtype=mx.uint32), i3),
    ("uint64_int8", mx.array([1, 2, 3, 4], dtype=mx.uint64), i8),
    ("int8_float16", i8, mx.array([0.5, 0.5, 0.5, 0.5], dtype=mx.float16)),
    ("float32_complex", f3, mx.array(1j, dtype=mx.complex64)),
]
for name, a, b in promotions:
    case(f"promote_add_{name}", "add", mx.add(a, b), a=a, b=b)
case("promote_multiply_uint8_int8", "multiply", mx.multiply(u8, i8), a=u8, b=i8)
case("promote_divide_int32", "divide", mx.divide(i23, i3), a=i23, b=i3)
case("promote_floor_divide_int_float", "floor_divide", mx.floor_divide(i23, f3), a=i23, b=f3)

# --- integer division with the divisors 1, -1 and positives in several dtypes ---
for dtype in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]:
    dt = getattr(mx, dtype)
    signed = dtype.startswith("int")
    a = mx.array([100, 7, 9, 13] if not signed else [-100, 7, -9, 13], dtype=dt)
    b = mx.array([3, 1, 4, 5] if not signed else [3, -1, 4, -5], dtype=dt)
    case(f"floor_divide_{dtype}", "floor_divide", mx.floor_divide(a, b), a=a, b=b)
    case(f"remainder_{dtype}", "remainder", mx.remainder(a, b), a=a, b=b)
case("floor_divide_int8_min", "floor_divide",
     mx.floor_divide(i8, mx.array(-1, dtype=mx.int8)), a=i8, b=mx.array(-1, dtype=mx.int8))

# --- divmod ---
dm_a = mx.array([[7.0, -7.0, 7.5], [-7.5, 0.0, 9.0]], dtype=mx.float32)
dm_b = mx.array([2.0, 2.0, -2.0], dtype=mx.float32)
case("divmod_f32", "divmod", mx.divmod(dm_a, dm_b), a=dm_a, b=dm_b)
case("divmod_i32", "divmod", mx.divmod(i23, i3), a=i23, b=i3)

# --- clip and nan_to_num ---
case("clip_both", "clip", mx.clip(f23, mx.array(-1.0), mx.array(1.0)), a=f23,
     a_min=mx.array(-1.0), a_max=mx.array(1.0))
case("clip_min", "clip", mx.clip(f23, mx.array(0.0), None), a=f23, a_min=mx.array(0.0))
case("clip_max", "clip", mx.clip(f23, None, mx.array(0.5)), a=f23, a_max=mx.array(0.5))
clip_lo = mx.array([-1.0, 0.0, 1.0], dtype=mx.float32)
clip_hi = mx.array([[0.0], [2.0]], dtype=mx.float32)
case("clip_arrays_bcast", "clip", mx.clip(f23, clip_lo, clip_hi), a=f23, a_min=clip_lo,
     a_max=clip_hi)
case("clip_int_float_bound", "clip", mx.clip(i23, mx.array(-2.5), None), a=i23,
     a_min=mx.array(-2.5))
case("nan_to_num_default", "nan_to_num", mx.nan_to_num(special), a=special, nan=0.0)
case("nan_to_num_values", "nan_to_num",
     mx.nan_to_num(special, nan=-7.0, posinf=100.0, neginf=-100.0), a=special, nan=-7.0,
     posinf=100.0, neginf=-100.0)
special16 = special.astype(mx.float16)
case("nan_to_num_f16", "nan_to_num", mx.nan_to_num(special16, 1.0), a=special16, nan=1.0)
case("nan_to_num_int", "nan_to_num", mx.nan_to_num(i23), a=i23, nan=0.0)

# --- unary math ---
unary = {
    "abs": f23, "negative": f23, "positive": f23, "sign": f23, "sqrt": pos23, "rsqrt": pos23,
    "square": f23, "reciprocal": pos23, "exp": f23, "expm1": f23, "log": pos23, "log2": pos23,
    "log10": pos23, "log1p": pos23, "sin": f23, "cos": f23, "tan": unit23, "arcsin": unit23,
    "arccos": unit23, "arctan": f23, "sinh": f23, "cosh": f23, "tanh": f23, "arcsinh": f23,
    "arccosh": ge1, "arctanh": unit23, "erf": f23, "erfinv": unit23, "floor": halves,
    "ceil": halves, "trunc": halves, "degrees": f23, "radians": f23, "sigmoid": f23,
}
for name, x in unary.items():
    fn = getattr(mx, name)
    case(f"{name}_f32", name, fn(x), a=x)
    case(f"{name}_special", name, fn(special), a=special)
for name in ["abs", "negative", "sign", "square", "sqrt", "exp", "sigmoid", "floor"]:
    fn = getattr(mx, name)
    case(f"{name}_i32", name, fn(i23), a=i23)
for name in ["abs", "negative", "sqrt", "exp", "sin", "sigmoid", "erf"]:
    fn = getattr(mx, name)
    x16 = f23.astype(mx.float16)
    case(f"{name}_f16", name, fn(x16), a=x16)
for name in ["abs", "negative", "sign", "sqrt", "square", "exp", "log", "sin", "cos", "tanh"]:
    fn = getattr(mx, name)
    case(f"{name}_complex", name, fn(z2), a=z2)
case("abs_uint8", "abs", mx.abs(u8), a=u8)
case("negative_uint8", "negative", mx.negative(u8), a=u8)
for decimals in [0, 1, 2, -1]:
    rx = mx.array([[123.456, -155.0, 0.5], [1.5, 2.5, -0.045]], dtype=mx.float32)
    case(f"round_{decimals}", "round", mx.round(rx, decimals), a=rx, decimals=decimals)
case("round_i32", "round", mx.round(i23, 1), a=i23, decimals=1)

# --- comparisons ---
comparisons = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]
cmp_b = mx.array([-0.5, 1.5, 0.0], dtype=mx.float32)
for name in comparisons:
    fn = getattr(mx, name)
    case(f"{name}_f32_bcast", name, fn(f23, cmp_b), a=f23, b=cmp_b)
    case(f"{name}_int_float", name, fn(i23, mx.array(2.0)), a=i23, b=mx.array(2.0))
    case(f"{name}_nan", name, fn(special, special), a=special, b=special)
for name in ["equal", "not_equal"]:
    case(f"{name}_complex", name, getattr(mx, name)(z2, mx.array(1 + 2j)), a=z2,
         b=mx.array(1 + 2j))
close_a = mx.array([1.0, 2.0, math.nan, math.inf, 1e-9], dtype=mx.float32)
close_b = mx.array([1.0 + 1e-6, 2.1, math.nan, math.inf, 0.0], dtype=mx.float32)
for rtol, atol, equal_nan, tag in [(1e-5, 1e-8, False, "default"), (1e-5, 1e-8, True, "nan"),
                                   (0.1, 0.0, False, "loose")]:
    case(f"isclose_{tag}", "isclose", mx.isclose(close_a, close_b, rtol, atol, equal_nan=equal_nan),
         a=close_a, b=close_b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    case(f"allclose_{tag}", "allclose", mx.allclose(close_a, close_b, rtol, atol, equal_nan=equal_nan),
         a=close_a, b=close_b, rtol=rtol, atol=atol, equal_nan=equal_nan)
case("isclose_bcast", "isclose", mx.isclose(f23, mx.array(0.0)), a=f23, b=mx.array(0.0),
     rtol=1e-5, atol=1e-8, equal_nan=False)
case("allclose_true", "allclose", mx.allclose(f23, f23 + 1e-7), a=f23, b=f23 + 1e-7,
     rtol=1e-5, atol=1e-8, equal_nan=False)
nan2 = mx.array([1.0, math.nan], dtype=mx.float32)
case("array_equal_same", "array_equal", mx.array_equal(i3, i3.astype(mx.float32)), a=i3,
     b=i3.astype(mx.float32), equal_nan=False)
case("array_equal_diff", "array_equal", mx.array_equal(i3, i3 + 1), a=i3, b=i3 + 1,
     equal_nan=False)
case("array_equal_shape", "array_equal", mx.array_equal(f3, f23), a=f3, b=f23, equal_nan=False)
case("array_equal_nan", "array_equal", mx.array_equal(nan2, nan2, equal_nan=True), a=nan2,
     b=nan2, equal_nan=True)
case("array_equal_nan_strict", "array_equal", mx.array_equal(nan2, nan2), a=nan2, b=nan2,
     equal_nan=False)
for name in ["isnan", "isinf", "isfinite", "isposinf", "isneginf"]:
    fn = getattr(mx, name)
    case(f"{name}_f32", name, fn(special), a=special)
    case(f"{name}_f16", name, fn(special16), a=special16)
    case(f"{name}_i32", name, fn(i23), a=i23)

# --- logical and bitwise ---
for name in ["logical_and", "logical_or", "logical_xor"]:
    fn = getattr(mx, name)
    case(f"{name}_bool", name, fn(b4, c4), a=b4, b=c4)
    case(f"{name}_f32", name, fn(f23, f3), a=f23, b=f3)
case("logical_not_bool", "logical_not", mx.logical_not(b4), a=b4)
case("logical_not_f32", "logical_not", mx.logical_not(f23), a=f23)
case("logical_not_i32", "logical_not", mx.logical_not(i23), a=i23)
bits_a = mx.array([[0b1100, 0b1010, -1], [0, 255, 0x7FFF]], dtype=mx.int32)
bits_b = mx.array([0b0110, 0b0011, 0x0F0F], dtype=mx.int32)
for name in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
    fn = getattr(mx, name)
    case(f"{name}_i32", name, fn(bits_a, bits_b), a=bits_a, b=bits_b)
    case(f"{name}_u8", name, fn(u8, mx.array(0x0F, dtype=mx.uint8)), a=u8,
         b=mx.array(0x0F, dtype=mx.uint8))
    case(f"{name}_bool", name, fn(b4, c4), a=b4, b=c4)
    case(f"{name}_u8_i8", name, fn(u8, i8), a=u8, b=i8)
case("bitwise_invert_i32", "bitwise_invert", mx.bitwise_invert(bits_a), a=bits_a)
case("bitwise_invert_u8", "bitwise_invert", mx.bitwise_invert(u8), a=u8)
case("bitwise_invert_bool", "bitwise_invert", mx.bitwise_invert(b4), a=b4)
shifts = mx.array([0, 1, 4], dtype=mx.int32)
case("left_shift_i32", "left_shift", mx.left_shift(bits_a, shifts), a=bits_a, b=shifts)
case("right_shift_i32", "right_shift", mx.right_shift(bits_a, shifts), a=bits_a, b=shifts)
case("left_shift_u8", "left_shift", mx.left_shift(u8, mx.array(1, dtype=mx.uint8)), a=u8,
     b=mx.array(1, dtype=mx.uint8))
case("right_shift_u8", "right_shift", mx.right_shift(u8, mx.array(2, dtype=mx.uint8)), a=u8,
     b=mx.array(2, dtype=mx.uint8))
case("left_shift_bool", "left_shift", mx.left_shift(b4, c4), a=b4, b=c4)

# --- conversions ---
conv_x = mx.array([[-2.7, -0.5, 0.0], [0.5, 1.9, 100.25]], dtype=mx.float32)
for dtype in ["int32", "int8", "uint8", "uint32", "int64", "bool", "float16", "bfloat16",
              "float64", "complex64"]:
    src = conv_x if dtype not in ("uint8", "uint32") else mx.abs(conv_x)
    case(f"astype_f32_{dtype}", "astype", src.astype(dtype_of(dtype)), a=src, dtype=dtype)
case("astype_i32_float32", "astype", i23.astype(mx.float32), a=i23, dtype="float32")
case("astype_i32_uint8", "astype", i23.astype(mx.uint8), a=i23, dtype="uint8")
case("astype_i32_bool", "astype", i23.astype(mx.bool_), a=i23, dtype="bool")
case("astype_bool_float32", "astype", b4.astype(mx.float32), a=b4, dtype="float32")
case("astype_complex_float32", "astype", z2.astype(mx.float32), a=z2, dtype="float32")
case("astype_f16_f32", "astype", special16.astype(mx.float32), a=special16, dtype="float32")
view_x = mx.array([1.0, -2.0, 0.5, 1e-3], dtype=mx.float32)
for dtype in ["int32", "uint32", "uint8", "int16", "float16"]:
    case(f"view_f32_{dtype}", "view", mx.view(view_x, dtype_of(dtype)), a=view_x,
         dtype=dtype)
case("view_u8_int32", "view", mx.view(u8, mx.int32), a=u8, dtype="int32")
case("view_i32_float32", "view", mx.view(i23, mx.float32), a=i23, dtype="float32")
case("real_complex", "real", mx.real(z2), a=z2)
case("imag_complex", "imag", mx.imag(z2), a=z2)
case("real_f32", "real", mx.real(f23), a=f23)
case("imag_f32", "imag", mx.imag(f23), a=f23)
case("conjugate_complex", "conjugate", mx.conjugate(z2), a=z2)
case("conjugate_f32", "conjugate", mx.conjugate(f23), a=f23)
case("contiguous_f32", "contiguous", mx.contiguous(f23), a=f23, allow_col_major=False)
case("copy_i32", "copy", mx.array(i23), a=i23)

# --- Rust scalar operands follow Python scalars (array `a` op scalar `value`) ---
h3 = f3.astype(mx.float16)
scalar_cases = [
    ("add_f16_float", "add", h3, 0.5, h3 + 0.5),
    ("multiply_i32_float", "multiply", i3, 0.5, i3 * 0.5),
    ("add_i32_int", "add", i3, 10, i3 + 10),
    ("add_u8_int", "add", u8, 1, u8 + 1),
    ("add_bool_int", "add", b4, 1, b4 + 1),
    ("add_bool_bool", "add", b4, True, b4 + True),
    ("add_f16_int", "add", h3, 3, h3 + 3),
    ("multiply_bf16_float", "multiply", f3.astype(mx.bfloat16), 3.0, f3.astype(mx.bfloat16) * 3.0),
    ("subtract_u8_bool", "subtract", u8, True, u8 - True),
    ("divide_i32_int", "divide", i3, 2, i3 / 2),
    ("remainder_i32_int", "remainder", i23, 4, i23 % 4),
    ("bitwise_and_u8_int", "bitwise_and", u8, 0x0F, u8 & 0x0F),
    ("left_shift_i32_int", "left_shift", i3, 2, i3 << 2),
    ("multiply_complex_float", "multiply", z2, 2.0, z2 * 2.0),
]
for name, op, a, value, out in scalar_cases:
    case(f"scalar_{name}", op, out, a=a, value=value)
scalar_left = [
    ("subtract_float_f32", "subtract", 1.0, f3, 1.0 - f3),
    ("divide_int_i32", "divide", 12, i3, 12 / i3),
    ("subtract_int_u8", "subtract", 255, u8, 255 - u8),
]
for name, op, value, b, out in scalar_left:
    case(f"scalar_left_{name}", op, out, value=value, b=b)

write("elementwise", cases)
