"""Golden values for reductions, sorting, scans, products and convolutions.

Writes reduction_linear.json, read by tests/reduction_linear.rs. Each case records its op, its
inputs (encoded arrays), its arguments and the expected output `out`. Run with MLX 0.32.2:

    python3 mlx-rs/tests/golden/gen_reduction_linear.py
"""

import mlx.core as mx

from golden_common import encode, write

cases = {}
# Inputs used by many cases are stored once, under the case "_inputs", and referred to by name.
shared = {}


def add(name, op, inputs, args, out):
    assert name not in cases, name
    case = {"op": op, "args": args, "out": encode(out)}
    for key, value in inputs.items():
        ref = next((n for n, v in shared.items() if v is value), None)
        case[key] = ref if ref is not None else encode(value)
    cases[name] = case


def normal(shape, seed):
    return mx.random.normal(shape, key=mx.random.key(seed))


# Distinct values (7 is coprime with 24), so argmax/argsort have no ties.
X = ((mx.arange(24) * 7 % 24).astype(mx.float32) - 11.5).reshape(2, 3, 4) / 4
XI = (mx.arange(24) * 7 % 24 - 11).reshape(2, 3, 4).astype(mx.int32)
XB = (mx.arange(24) % 3 == 0).reshape(2, 3, 4)
XU8 = (mx.arange(24) * 11 % 256).reshape(2, 3, 4).astype(mx.uint8)
XZ = mx.array([[0.0, 1.5, 0.0, -2.0], [0.0, 0.0, 3.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
shared.update(X=X, XI=XI, XB=XB, XU8=XU8, XZ=XZ)

# ---- reductions: (name, function, inputs) ----
AXES = {"all": None, "a1": [1], "am1": [-1], "a02": [0, 2], "none": []}
REDUCERS = {
    "sum": mx.sum,
    "prod": mx.prod,
    "mean": mx.mean,
    "max": mx.max,
    "min": mx.min,
    "median": mx.median,
    "logsumexp": mx.logsumexp,
    "all": mx.all,
    "any": mx.any,
    "count_nonzero": lambda a, axis, keepdims: mx.count_nonzero(a, axis=axis, keepdims=keepdims),
}
for op, f in REDUCERS.items():
    inputs = {"x": X, "xi": XI}
    if op in ("sum", "all", "any", "count_nonzero", "max"):
        inputs["xb"] = XB
    if op in ("sum", "prod", "max", "mean"):
        inputs["xu8"] = XU8
    if op in ("all", "any", "count_nonzero"):
        inputs["xz"] = XZ
    for input_name, a in inputs.items():
        for axes_name, axes in AXES.items():
            if a.ndim == 2 and axes is not None and 2 in axes:
                axes = [0, 1]
            for keepdims in (False, True):
                if op == "median" and axes == []:
                    continue
                name = f"{op}/{input_name}/{axes_name}/{'keep' if keepdims else 'drop'}"
                add(name, op, {"a": a}, {"axes": axes, "keepdims": keepdims}, f(a, axes, keepdims))

for op, f in (("var", mx.var), ("std", mx.std)):
    for input_name, a in (("x", X), ("xi", XI)):
        for axes_name, axes in (("all", None), ("a1", [1]), ("a02", [0, 2]), ("am1", [-1])):
            for ddof in (0, 1, 2):
                for keepdims in (False, True):
                    name = f"{op}/{input_name}/{axes_name}/ddof{ddof}/{'keep' if keepdims else 'drop'}"
                    args = {"axes": axes, "keepdims": keepdims, "ddof": ddof}
                    add(name, op, {"a": a}, args, f(a, axes, keepdims, ddof))

for op, f in (("argmax", mx.argmax), ("argmin", mx.argmin)):
    for input_name, a in (("x", X), ("xi", XI), ("xu8", XU8)):
        for axis in (None, 0, 1, -1):
            for keepdims in (False, True):
                name = f"{op}/{input_name}/{axis}/{'keep' if keepdims else 'drop'}"
                add(name, op, {"a": a}, {"axis": axis, "keepdims": keepdims}, f(a, axis, keepdims))

for input_name, a in (("x", X), ("xi", XI), ("xf16", X.astype(mx.float16))):
    for axes_name, axes in (("all", None), ("am1", [-1]), ("a1", [1]), ("a02", [0, 2])):
        for precise in (False, True):
            name = f"softmax/{input_name}/{axes_name}/{'precise' if precise else 'fast'}"
            args = {"axes": axes, "precise": precise}
            add(name, "softmax", {"a": a}, args, mx.softmax(a, axes, precise=precise))

# ---- sorting ----
for input_name, a in (("x", X), ("xi", XI)):
    for axis in (None, 0, 1, -1):
        add(f"sort/{input_name}/{axis}", "sort", {"a": a}, {"axis": axis}, mx.sort(a, axis))
        add(f"argsort/{input_name}/{axis}", "argsort", {"a": a}, {"axis": axis}, mx.argsort(a, axis))
    # Partitions and top-k leave the order within each side unspecified: the test checks the
    # element at kth, and compares the output sorted along the axis (`sorted`).
    for kth, axis in ((1, -1), (2, 1), (-1, 0), (0, None), (5, None)):
        p = mx.partition(a, kth, axis)
        sort_axis = -1 if axis is None else axis
        out = {"kth": kth, "axis": axis}
        add(f"partition/{input_name}/{kth}/{axis}", "partition", {"a": a, "sorted": mx.sort(p, sort_axis), "full": mx.sort(a, axis)}, out, p)
        ap = mx.argpartition(a, kth, axis)
        add(f"argpartition/{input_name}/{kth}/{axis}", "argpartition", {"a": a, "sorted": mx.sort(ap, sort_axis), "full": mx.argsort(a, axis)}, out, ap)
    for k, axis in ((2, -1), (1, 1), (2, 0), (3, None), (24, None)):
        t = mx.topk(a, k, axis)
        sort_axis = -1 if axis is None else axis
        add(f"topk/{input_name}/{k}/{axis}", "topk", {"a": a, "sorted": mx.sort(t, sort_axis)}, {"k": k, "axis": axis}, t)

SEQ = mx.array([-1.0, 0.5, 0.5, 2.0, 2.0, 2.0, 7.0])
VALS = mx.array([[0.5, 2.0, -3.0], [7.0, 8.0, 1.0]])
for side in ("left", "right"):
    add(f"searchsorted/f32/{side}", "searchsorted", {"a": SEQ, "v": VALS}, {"side": side}, mx.searchsorted(SEQ, VALS, side=side))
    seq_i = mx.array([1, 3, 3, 5], dtype=mx.int32)
    vals_i = mx.array([0, 3, 4, 5, 6], dtype=mx.int32)
    add(f"searchsorted/i32/{side}", "searchsorted", {"a": seq_i, "v": vals_i}, {"side": side}, mx.searchsorted(seq_i, vals_i, side=side))

# ---- scans ----
SCANS = {
    "cumsum": mx.cumsum,
    "cumprod": mx.cumprod,
    "cummax": mx.cummax,
    "cummin": mx.cummin,
    "logcumsumexp": mx.logcumsumexp,
}
for op, f in SCANS.items():
    inputs = {"x": X} if op == "logcumsumexp" else {"x": X, "xi": XI}
    for input_name, a in inputs.items():
        for axis in (None, 0, 1, -1):
            for reverse in (False, True):
                for inclusive in (False, True):
                    if op == "cumprod" and input_name == "xi" and axis is None:
                        continue  # int32 overflow
                    name = f"{op}/{input_name}/{axis}/{'rev' if reverse else 'fwd'}/{'inc' if inclusive else 'exc'}"
                    args = {"axis": axis, "reverse": reverse, "inclusive": inclusive, "dtype": None}
                    out = f(a, axis, reverse=reverse, inclusive=inclusive)
                    add(name, op, {"a": a}, args, out)
for op in ("cumsum", "cumprod"):
    f = SCANS[op]
    for input_name, a, dtype in (("xb", XB, mx.float32), ("xi", XI, mx.float32), ("xu8", XU8, mx.int32), ("xb", XB, None)):
        dname = "none" if dtype is None else str(dtype).replace("mlx.core.", "")
        args = {"axis": 1, "reverse": False, "inclusive": True, "dtype": dname if dtype else None}
        kwargs = {} if dtype is None else {"dtype": dtype}
        add(f"{op}/{input_name}/dtype_{dname}", op, {"a": a}, args, f(a, 1, **kwargs))

for input_name, a in (("x", X), ("xi", XI)):
    for n, axis in ((0, -1), (1, -1), (2, -1), (1, 0), (1, 1), (3, 1), (5, -1)):
        add(f"diff/{input_name}/{n}/{axis}", "diff", {"a": a}, {"n": n, "axis": axis}, mx.diff(a, n, axis))

# ---- products ----
A34 = normal((3, 4), 1)
B42 = normal((4, 2), 2)
B2134 = normal((2, 1, 3, 4), 3)
B542 = normal((5, 4, 2), 4)
V4 = normal((4,), 5)
V4B = normal((4,), 6)
for name, a, b in (
    ("2d", A34, B42),
    ("batch_broadcast", B2134, B542),
    ("vec_mat", V4, B42),
    ("mat_vec", A34, V4),
    ("vec_vec", V4, V4B),
    ("batch_vec", B2134, V4),
    ("f16", A34.astype(mx.float16), B42.astype(mx.float16)),
):
    add(f"matmul/{name}", "matmul", {"a": a, "b": b}, {}, mx.matmul(a, b))

C32 = normal((3, 2), 7)
for name, c, alpha, beta in (("full", C32, 1.0, 1.0), ("scaled", C32, 0.5, -2.0), ("row", normal((2,), 8), 2.0, 3.0)):
    add(f"addmm/{name}", "addmm", {"c": c, "a": A34, "b": B42}, {"alpha": alpha, "beta": beta}, mx.addmm(c, A34, B42, alpha, beta))

add("inner/1d", "inner", {"a": V4, "b": V4B}, {}, mx.inner(V4, V4B))
add("inner/2d", "inner", {"a": A34, "b": normal((5, 4), 9)}, {}, mx.inner(A34, normal((5, 4), 9)))
add("outer/1d", "outer", {"a": V4, "b": normal((3,), 10)}, {}, mx.outer(V4, normal((3,), 10)))
add("outer/2d_int", "outer", {"a": XI[0, :2], "b": XI[1]}, {}, mx.outer(XI[0, :2], XI[1]))

T234 = normal((2, 3, 4), 11)
T342 = normal((3, 4, 2), 12)
shared.update(A34=A34, B42=B42, V4=V4, T234=T234)
for name, a, b, axes in (
    ("count2", T234, T342, 2),
    ("count1", T234, normal((4, 5), 13), 1),
    ("count0", V4, normal((3,), 14), 0),
    ("pairs", T234, normal((4, 2, 5), 15), [[0, 2], [1, 0]]),
    ("pairs_neg", T234, normal((3, 6), 16), [[-2], [0]]),
):
    args = {"count": axes} if isinstance(axes, int) else {"axes_a": axes[0], "axes_b": axes[1]}
    add(f"tensordot/{name}", "tensordot", {"a": a, "b": b}, args, mx.tensordot(a, b, axes))

for name, subscripts, operands in (
    ("matmul", "ij,jk->ik", [A34, B42]),
    ("batch_matmul", "bij,bjk->bik", [normal((2, 3, 4), 17), normal((2, 4, 5), 18)]),
    ("trace", "ii->", [normal((4, 4), 19)]),
    ("outer", "i,j->ij", [V4, normal((3,), 20)]),
    ("transpose", "ijk->kij", [T234]),
    ("sum_all", "ij->", [A34]),
    ("three", "ij,jk,kl->il", [A34, B42, normal((2, 3), 21)]),
    ("implicit", "ij,jk", [A34, B42]),
):
    inputs = {f"op{i}": o for i, o in enumerate(operands)}
    add(f"einsum/{name}", "einsum", inputs, {"subscripts": subscripts, "count": len(operands)}, mx.einsum(subscripts, *operands))

add("kron/2d", "kron", {"a": normal((2, 3), 22), "b": normal((3, 2), 23)}, {}, mx.kron(normal((2, 3), 22), normal((3, 2), 23)))
add("kron/int_1d_2d", "kron", {"a": XI[0, 0], "b": XI[1, :2]}, {}, mx.kron(XI[0, 0], XI[1, :2]))
# MLX 0.32.2's vecdot broadcasts sizes but needs both inputs to have the same number of axes.
add("vecdot/last", "vecdot", {"a": T234, "b": V4.reshape(1, 1, 4)}, {"axis": -1}, mx.vecdot(T234, V4.reshape(1, 1, 4)))
add("vecdot/axis1", "vecdot", {"a": T234, "b": normal((1, 3, 1), 24) * mx.ones((1, 3, 4))}, {"axis": 1}, mx.vecdot(T234, normal((1, 3, 1), 24) * mx.ones((1, 3, 4)), axis=1))
add("vecdot/same", "vecdot", {"a": T234, "b": normal((2, 3, 4), 26)}, {"axis": 0}, mx.vecdot(T234, normal((2, 3, 4), 26), axis=0))

SQ = normal((4, 5), 25)
for name, a, offset, ax1, ax2, dtype in (
    ("default", SQ, 0, 0, 1, None),
    ("offset1", SQ, 1, 0, 1, None),
    ("offset_neg", SQ, -2, 0, 1, None),
    ("axes12", T234, 0, 1, 2, None),
    ("axes_neg_swapped", T234, 1, -1, 0, None),
    ("int", XI[0], 0, 0, 1, None),
    ("int_to_f32", XI[0], 1, 0, 1, mx.float32),
    ("u8", XU8[0], 0, 0, 1, None),
):
    dname = None if dtype is None else str(dtype).replace("mlx.core.", "")
    args = {"offset": offset, "axis1": ax1, "axis2": ax2, "dtype": dname}
    add(f"trace/{name}", "trace", {"a": a}, args, mx.trace(a, offset, ax1, ax2, dtype))

# ---- convolutions (channels last) ----
def conv_case(name, op, x, w, stride, padding, dilation, groups, output_padding=None):
    f = getattr(mx, op)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if output_padding is not None:
        kwargs["output_padding"] = output_padding
    args = {
        "stride": stride if isinstance(stride, (list, tuple)) else [stride],
        "padding": padding if isinstance(padding, (list, tuple)) else [padding],
        "dilation": dilation if isinstance(dilation, (list, tuple)) else [dilation],
        "output_padding": (output_padding if isinstance(output_padding, (list, tuple)) else [output_padding or 0]),
        "groups": groups,
    }
    add(f"{op}/{name}", op, {"x": x, "w": w}, args, f(x, w, **kwargs))


X1 = normal((2, 9, 4), 30)
X2 = normal((2, 6, 5, 4), 34)
X3 = normal((1, 5, 4, 4, 2), 37)
shared.update(X1=X1, X2=X2, X3=X3)
conv_case("plain", "conv1d", X1, normal((6, 3, 4), 31), 1, 0, 1, 1)
conv_case("stride_pad_dil", "conv1d", X1, normal((6, 3, 4), 31), 2, 1, 2, 1)
conv_case("groups", "conv1d", X1, normal((6, 3, 2), 32), 1, 2, 1, 2)
conv_case("depthwise", "conv1d", X1, normal((4, 3, 1), 33), 1, 1, 1, 4)
conv_case("plain", "conv2d", X2, normal((3, 3, 2, 4), 35), (1, 1), (0, 0), (1, 1), 1)
conv_case("stride_pad_dil", "conv2d", X2, normal((3, 3, 2, 4), 35), (2, 1), (1, 0), (1, 2), 1)
conv_case("groups", "conv2d", X2, normal((4, 3, 3, 2), 36), (1, 2), (1, 1), (1, 1), 2)
conv_case("plain", "conv3d", X3, normal((3, 2, 2, 2, 2), 38), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1)
conv_case("stride_pad_dil", "conv3d", X3, normal((4, 2, 2, 3, 2), 39), (2, 1, 2), (1, 0, 1), (1, 2, 1), 1)
conv_case("plain", "conv_transpose1d", X1, normal((3, 3, 4), 40), 1, 0, 1, 1, 0)
conv_case("stride_pad_outpad", "conv_transpose1d", X1, normal((3, 3, 4), 40), 2, 1, 1, 1, 1)
conv_case("dil_groups", "conv_transpose1d", X1, normal((4, 2, 2), 41), 1, 0, 2, 2, 0)
conv_case("plain", "conv_transpose2d", X2, normal((3, 2, 3, 4), 42), (1, 1), (0, 0), (1, 1), 1, (0, 0))
conv_case("stride_pad_outpad", "conv_transpose2d", X2, normal((2, 3, 3, 2), 43), (2, 3), (1, 0), (1, 1), 2, (1, 2))
conv_case("plain", "conv_transpose3d", X3, normal((2, 2, 2, 2, 2), 44), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1, (0, 0, 0))
conv_case("stride_dil_outpad", "conv_transpose3d", X3, normal((2, 2, 2, 2, 2), 44), (2, 1, 2), (0, 1, 0), (1, 2, 1), 1, (1, 0, 1))

W2 = normal((3, 3, 2, 4), 45)
for name, kwargs in (
    ("defaults", {}),
    ("scalar_stride_pad", {"stride": 2, "padding": 1}),
    ("lo_hi", {"stride": [1, 2], "padding": ([2, 0], [1, 3])}),
    ("kernel_input_dilation", {"kernel_dilation": [2, 1], "input_dilation": [1, 2], "padding": 1}),
    ("flip", {"flip": True, "padding": [1, 0]}),
    ("groups_flip", {"groups": 2, "flip": True, "input_dilation": 2}),
):
    w = normal((4, 3, 2, 2), 46) if "groups" in kwargs else W2
    pad = kwargs.get("padding", 0)
    if isinstance(pad, tuple):
        lo, hi = pad
    else:
        lo = hi = pad if isinstance(pad, list) else [pad]

    def listed(v, default):
        v = kwargs.get(v, default)
        return v if isinstance(v, list) else [v]

    args = {
        "stride": listed("stride", 1),
        "padding_lo": lo,
        "padding_hi": hi,
        "kernel_dilation": listed("kernel_dilation", 1),
        "input_dilation": listed("input_dilation", 1),
        "groups": kwargs.get("groups", 1),
        "flip": kwargs.get("flip", False),
    }
    add(f"conv_general/{name}", "conv_general", {"x": X2, "w": w}, args, mx.conv_general(X2, w, **kwargs))

cases["_inputs"] = {name: encode(value) for name, value in shared.items()}
write("reduction_linear", cases)
