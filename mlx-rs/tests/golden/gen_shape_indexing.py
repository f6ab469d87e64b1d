"""Golden values for creation, shape manipulation and indexing (tests/shape_indexing.rs).

Run with mlx[cpu]==0.32.2: python3 mlx-rs/tests/golden/gen_shape_indexing.py
"""

import mlx.core as mx

from golden_common import encode, write

cases = {}


def case(name, out, **inputs):
    entry = {"out": encode(out) if not isinstance(out, (list, tuple)) else [encode(o) for o in out]}
    for key, value in inputs.items():
        entry[key] = encode(value)
    cases[name] = entry


a = mx.arange(24, dtype=mx.float32).reshape(2, 3, 4)
m = mx.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=mx.int32)
v = mx.array([3.0, -1.0, 2.5, 0.0], dtype=mx.float32)
cases["inputs"] = {"a": encode(a), "m": encode(m), "v": encode(v)}

# --- creation -------------------------------------------------------------------------------
case("zeros", mx.zeros((2, 3), dtype=mx.float32))
case("ones_int", mx.ones((3,), dtype=mx.int32))
case("full_row", mx.full((2, 3), mx.array([1.0, 2.0, 3.0])))
# Python MLX 0.32.2 ignores `dtype` in mx.full; the C++ op (which mlx-c calls) casts.
case("full_dtype", mx.full((2,), mx.array(2.7)).astype(mx.int32))
case("zeros_like", mx.zeros_like(m))
case("ones_like", mx.ones_like(v))
case("full_like", mx.full_like(m, 2.7))
case("full_like_dtype", mx.full_like(m, 2.7, dtype=mx.float16))
case("arange_f", mx.arange(0.5, 3.0, 0.5))
case("arange_neg_step", mx.arange(5, 0, -2, dtype=mx.int32))
case("arange_i", mx.arange(1, 10, 3, dtype=mx.int32))
case("linspace", mx.linspace(-1.0, 1.0, 5))
# numpy.linspace(0, 1, 4, endpoint=False); Python MLX has no endpoint argument.
case("linspace_noend", mx.arange(4, dtype=mx.float32) * 0.25)
case("eye", mx.eye(3, 4, 1, dtype=mx.float32))
case("eye_neg_k", mx.eye(3, None, -1, dtype=mx.int32))
case("identity", mx.identity(3))
case("tri", mx.tri(3, 4, 1, dtype=mx.float32))
case("tril", mx.tril(m, -1))
case("triu", mx.triu(m, 1))
xs, ys = mx.meshgrid(mx.array([1, 2, 3]), mx.array([4, 5]))
case("meshgrid_xy", [xs, ys])
xs, ys = mx.meshgrid(mx.array([1, 2, 3]), mx.array([4, 5]), indexing="ij")
case("meshgrid_ij", [xs, ys])
xs, ys = mx.meshgrid(mx.array([1, 2, 3]), mx.array([4, 5]), sparse=True)
case("meshgrid_sparse", [xs, ys])
case("bartlett", mx.bartlett(6))
case("blackman", mx.blackman(6))
case("hamming", mx.hamming(6))
case("hanning", mx.hanning(6))

# --- shape ----------------------------------------------------------------------------------
case("reshape", a.reshape(4, -1))
case("flatten", mx.flatten(a, 1, -1))
case("flatten_all", mx.flatten(a))
case("unflatten", mx.unflatten(a, -1, (2, -1)))
case("squeeze_all", mx.squeeze(mx.zeros((1, 3, 1))))
case("squeeze_neg", mx.squeeze(a.reshape(2, 1, 12, 1), -1))
case("squeeze_axes", mx.squeeze(a.reshape(1, 2, 1, 12), (0, 2)))
case("expand_dims", mx.expand_dims(m, (0, -1)))
case("expand_dims_one", mx.expand_dims(m, 1))
case("transpose", mx.transpose(a))
case("transpose_axes", mx.transpose(a, (1, -1, 0)))
case("swapaxes", mx.swapaxes(a, 0, -1))
case("moveaxis", mx.moveaxis(a, -1, 0))
case("broadcast_to", mx.broadcast_to(v, (2, 4)))
b1, b2 = mx.broadcast_arrays(mx.array([1, 2, 3]), mx.array([[10], [20]]))
case("broadcast_arrays", [b1, b2])
case("concatenate", mx.concatenate([m, m[:1]], axis=0))
case("concatenate_neg", mx.concatenate([m, m], axis=-1))
case("concatenate_promote", mx.concatenate([m[0], v], axis=0))
case("concatenate_none", mx.concatenate([m, v], axis=None))
case("stack", mx.stack([v, v * 2], axis=0))
case("stack_neg", mx.stack([v, v * 2], axis=-1))
case("unstack", mx.unstack(m, axis=-1))
case("split", mx.split(a, 2, axis=-1))
case("split_sections", mx.split(a, [1, 3], axis=2))
case("tile", mx.tile(m, (2, 1)))
case("tile_more", mx.tile(v, (2, 2)))
case("repeat", mx.repeat(m, 2, axis=-1))
case("repeat_flat", mx.repeat(m, 2))
case("pad_const", mx.pad(m, [(1, 0), (0, 2)], constant_values=-1))
case("pad_all", mx.pad(v, 2))
case("pad_pair", mx.pad(m, (1, 2)))
case("pad_edge", mx.pad(m, [(1, 1), (2, 0)], mode="edge"))
case("pad_reflect", mx.pad(v, [(2, 1)], mode="reflect"))
case("pad_symmetric", mx.pad(v, 2, mode="symmetric"))
case("roll_flat", mx.roll(m, 2))
case("roll_axis", mx.roll(m, -1, axis=-1))
case("roll_axes", mx.roll(a, (1, -2), axis=(0, 2)))
case("roll_one_shift_axes", mx.roll(m, 1, axis=(0, 1)))
case("flip", mx.flip(m))
case("flip_axis", mx.flip(a, -1))
case("flip_axes", mx.flip(a, (0, 2)))
case("atleast_1d", mx.atleast_1d(mx.array(5.0)))
case("atleast_2d", mx.atleast_2d(v))
case("atleast_3d", mx.atleast_3d(m))
case("as_strided", mx.as_strided(mx.arange(10), (4, 3), (2, 1), 1))
case("diag_vec", mx.diag(mx.array([1, 2, 3]), -1))
case("diag_mat", mx.diag(m, 1))
case("diagonal", mx.diagonal(a, 1, 1, 2))
case("diagonal_neg", mx.diagonal(a, -1, -1, 0))

# --- indexing ops ---------------------------------------------------------------------------
idx = mx.array([2, 0, -1], dtype=mx.int32)
cases["inputs"]["idx"] = encode(idx)
case("take_axis", mx.take(a, idx, axis=1))
case("take_neg_axis", mx.take(a, idx, axis=-1))
case("take_flat", mx.take(a, mx.array([[0, 5], [23, -2]])))
tai = mx.array([[[0], [3], [1]], [[2], [2], [0]]], dtype=mx.int32)
cases["inputs"]["tai"] = encode(tai)
case("take_along_axis", mx.take_along_axis(a, tai, axis=-1))
case("take_along_none", mx.take_along_axis(a, mx.array([4, 0, 23]), axis=None))
case("put_along_axis", mx.put_along_axis(a, tai, mx.array(-5.0), axis=2))
case("put_along_none", mx.put_along_axis(m, mx.array([0, 8]), mx.array([-1, -2]), axis=None))
# Python MLX has no scatter_add_axis: the same sums through .at[].add with explicit rows.
sai = mx.array([[1, 1, 3], [0, 2, 2]], dtype=mx.int32)
cases["inputs"]["sai"] = encode(sai)
case("scatter_add_axis", mx.zeros((2, 4)).at[mx.array([[0], [1]]), sai].add(1.0))
case("slice", a[1:, ::2, 3:0:-2])
case("slice_dynamic", mx.slice(a, mx.array([1, 2]), [1, 2], [2, 1, 2]))
case("slice_update_dynamic", mx.slice_update(m, mx.array([[10, 20]]), mx.array([2, 1]), [0, 1]))
u = mx.array(a)
u[:, 1:3, ::-2] = mx.array([100.0, 200.0])
case("slice_update_static", u)
case("gather", mx.take(m, mx.array([2, 0]), axis=0)[:, None, :2])
case("gather_two", mx.stack([m[2, 1], m[0, 0]])[:, None, None])
s = mx.zeros((3, 3), dtype=mx.int32)
s[mx.array([1, 0]), mx.array([2, 2])] = mx.array([5, 6])
case("scatter_two", s)
s = mx.zeros((4,), dtype=mx.float32).at[mx.array([0, 0, 3])].add(mx.array([1.0, 2.0, 3.0]))
case("scatter_add", s)
s = mx.full((4,), 2.0).at[mx.array([0, 0, 3])].maximum(mx.array([1.0, 5.0, 3.0]))
case("scatter_max", s)
s = mx.full((4,), 2.0).at[mx.array([0, 0, 3])].minimum(mx.array([1.0, 5.0, 3.0]))
case("scatter_min", s)
s = mx.full((4,), 2.0).at[mx.array([0, 0, 3])].multiply(mx.array([1.5, 5.0, 3.0]))
case("scatter_prod", s)
mask = mx.array([[True, False, True], [False, False, True], [True, True, False]])
cases["inputs"]["mask"] = encode(mask)
ms = mx.array(m)
ms[mask] = mx.array([10, 20, 30, 40, 50])
case("masked_scatter", ms)
case("where", mx.where(mask, m, mx.array(-1.5)))

# --- index expressions (a[...] and a[...] = value) --------------------------------------------
# Index values must be in range: MLX does not check them (out-of-range values read and write
# outside the array).
a0 = mx.array([1, 0, 1], dtype=mx.int32)  # for axis 0 (size 2)
ai = mx.array([2, 0], dtype=mx.int32)  # for axis 1 (size 3) or 2 (size 4)
aj = mx.array([[1], [3]], dtype=mx.int32)  # for axis 2 (size 4)
cases["inputs"]["a0"] = encode(a0)
cases["inputs"]["ai"] = encode(ai)
cases["inputs"]["aj"] = encode(aj)
exprs = {
    "ix_int": lambda x: x[1],
    "ix_neg_int": lambda x: x[-1, -2],
    "ix_scalar": lambda x: x[1, 2, 3],
    "ix_range": lambda x: x[:, 1:3],
    "ix_from": lambda x: x[:, 1:],
    "ix_to_neg": lambda x: x[..., :-1],
    "ix_incl": lambda x: x[:, 0:2, -2:],
    "ix_step": lambda x: x[1:, ::2, None, ...],
    "ix_neg_step": lambda x: x[::-1, 2::-2, -1:0:-3],
    "ix_clamped": lambda x: x[-10:10, 5:, ::-5],
    "ix_newaxis": lambda x: x[None, :, None, 1],
    "ix_ellipsis_mid": lambda x: x[0, ..., 1],
    "ix_ellipsis_only": lambda x: x[...],
    "ix_empty": lambda x: x[:, 2:1],
    "ix_arr": lambda x: x[a0],
    "ix_arr_last": lambda x: x[..., ai],
    "ix_arr_mid_slice": lambda x: x[1:, ai, ::2],
    "ix_arr_int": lambda x: x[0, :, ai],
    "ix_arr_adjacent": lambda x: x[:, ai, aj],
    "ix_arr_separated": lambda x: x[a0[:1], :, aj],
    "ix_arr_newaxis": lambda x: x[None, a0, 1:3],
    "ix_arr_neg": lambda x: x[:, mx.array([-1, 0])],
}
for name, f in exprs.items():
    case(name, f(a))

puts = {
    "put_int": (lambda x, val: x.__setitem__(1, val), mx.array(-1.0)),
    "put_row": (lambda x, val: x.__setitem__((0, 1), val), mx.array([1.0, 2.0, 3.0, 4.0])),
    "put_step": (lambda x, val: x.__setitem__((slice(None), slice(None, None, 2), slice(1, None)), val),
                 mx.array([[7.0], [8.0]])),
    "put_neg_step": (lambda x, val: x.__setitem__((slice(None), slice(None, None, -1), 0), val),
                     mx.array([1.0, 2.0, 3.0])),
    "put_newaxis": (lambda x, val: x.__setitem__((None, 1, Ellipsis, 2), val), mx.array([[5.0, 6.0, 7.0]])),
    "put_leading_ones": (lambda x, val: x.__setitem__(0, val), mx.ones((1, 1, 4))),
    "put_arr": (lambda x, val: x.__setitem__(a0, val), mx.array(9.0)),
    "put_arr_adjacent": (lambda x, val: x.__setitem__((1, ai, aj), val), mx.array([[1.0, 2.0], [3.0, 4.0]])),
    "put_arr_slices": (lambda x, val: x.__setitem__((slice(None), ai, slice(1, 3)), val),
                       mx.array([10.0, 20.0])),
    "put_arr_separated": (lambda x, val: x.__setitem__((a0[:2], slice(None), aj), val),
                          mx.array([[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]])),
}
for name, (f, val) in puts.items():
    x = mx.array(a)
    f(x, val)
    case(name, x, value=val)

write("shape_indexing", cases)
