"""Golden values for tests/random_linalg_fft.rs (see README.md beside this file).

Random cases use fixed keys (MLX's generator is a pure function of the key), so the Rust side
draws the same numbers. Linear algebra runs on the CPU stream, as MLX 0.32.2 requires. Inputs are
stored next to outputs where the test needs them.
"""

import math

import mlx.core as mx

from golden_common import encode, write

cpu = mx.cpu
cases = {}


def pattern(shape, phase):
    n = math.prod(shape)
    i = mx.arange(n, dtype=mx.float32)
    return mx.sin(i * 0.37 + phase).reshape(shape)


# ---------------------------------------------------------------- random
k = mx.random.key
cases["key"] = {"out": encode(k(42))}
cases["split"] = {"out": encode(mx.random.split(k(0), 3))}
cases["split_pair"] = {"out": encode(mx.random.split(k(7)))}
cases["uniform"] = {"out": encode(mx.random.uniform(shape=[2, 3], key=k(1)))}
low = mx.array([0.0, 10.0])
high = mx.array([1.0, 20.0])
cases["uniform_broadcast"] = {
    "low": encode(low), "high": encode(high),
    "out": encode(mx.random.uniform(low, high, shape=[3, 2], key=k(11)))}
cases["normal"] = {"out": encode(mx.random.normal(shape=[5], key=k(2)))}
cases["normal_loc_scale"] = {"out": encode(mx.random.normal(shape=[2, 2], loc=1.0, scale=2.0, key=k(12)))}
loc = mx.array([0.0, 100.0, -5.0])
cases["normal_broadcast"] = {
    "loc": encode(loc),
    "out": encode(mx.random.normal(shape=[2, 3], loc=loc, key=k(13)))}
cases["randint"] = {"out": encode(mx.random.randint(0, 10, shape=[6], key=k(3)))}
cases["randint_int16"] = {"out": encode(mx.random.randint(-5, 5, shape=[2, 3], dtype=mx.int16, key=k(14)))}
cases["bernoulli"] = {"out": encode(mx.random.bernoulli(0.5, shape=[16], key=k(4)))}
p = mx.array([0.1, 0.5, 0.9, 0.99])
cases["bernoulli_array"] = {"p": encode(p), "out": encode(mx.random.bernoulli(p, key=k(15)))}
logits = pattern((2, 4), 0.3) * 2.0
cases["categorical"] = {"logits": encode(logits), "out": encode(mx.random.categorical(logits, key=k(5)))}
cases["categorical_num_samples"] = {
    "out": encode(mx.random.categorical(logits, num_samples=3, key=k(16)))}
cases["categorical_shape"] = {"out": encode(mx.random.categorical(logits, shape=[3, 2], key=k(17)))}
cases["categorical_axis0"] = {"out": encode(mx.random.categorical(logits, axis=0, key=k(18)))}
cases["permutation_arange"] = {"out": encode(mx.random.permutation(8, key=k(6)))}
px = mx.arange(12).reshape(4, 3)
cases["permutation_array"] = {
    "x": encode(px),
    "out": encode(mx.random.permutation(px, key=k(19))),
    "out_axis1": encode(mx.random.permutation(px, axis=1, key=k(20)))}
cases["truncated_normal"] = {"out": encode(mx.random.truncated_normal(-1.0, 1.0, shape=[5], key=k(7)))}
cases["gumbel"] = {"out": encode(mx.random.gumbel(shape=[4], key=k(8)))}
cases["laplace"] = {"out": encode(mx.random.laplace(shape=[4], loc=1.0, scale=0.5, key=k(9)))}
mean = mx.array([1.0, -1.0])
cov = mx.array([[2.0, 0.5], [0.5, 1.0]])
cases["multivariate_normal"] = {
    "mean": encode(mean), "cov": encode(cov),
    "out": encode(mx.random.multivariate_normal(mean, cov, shape=[3], key=k(10), stream=cpu))}

# ---------------------------------------------------------------- linalg
A = mx.array([[4.0, -2.0, 1.0], [3.0, 6.0, -4.0], [2.0, 1.0, 8.0]])
S = A @ A.T + mx.eye(3)  # symmetric positive definite
L = mx.tril(A) + mx.eye(3)
R = pattern((4, 3), 0.5)
b = mx.array([1.0, -2.0, 3.0])
B = pattern((3, 2), 1.1)
la = mx.linalg
cases["linalg_inputs"] = {"A": encode(A), "S": encode(S), "L": encode(L), "R": encode(R),
                          "b": encode(b), "B": encode(B)}
v = mx.array([3.0, -4.0, 12.0])
cases["norm"] = {
    "default_matrix": encode(la.norm(A)),
    "default_vector": encode(la.norm(v)),
    "vec_1": encode(la.norm(v, 1)),
    "vec_0": encode(la.norm(v, 0)),
    "vec_3": encode(la.norm(v, 3)),
    "vec_inf": encode(la.norm(v, math.inf)),
    "vec_neg_inf": encode(la.norm(v, -math.inf)),
    "mat_1": encode(la.norm(A, 1)),
    "mat_inf": encode(la.norm(A, math.inf)),
    "mat_neg_1": encode(la.norm(A, -1)),
    "fro": encode(la.norm(A, "fro")),
    "nuc": encode(la.norm(A, "nuc", stream=cpu)),
    "mat_2": encode(la.norm(A, 2, stream=cpu)),
    "axis1_keepdims": encode(la.norm(A, axis=1, keepdims=True)),
    "axis0_ord1": encode(la.norm(A, 1, axis=0)),
    "batch_fro": encode(la.norm(pattern((2, 3, 3), 0.2), "fro", axis=[1, 2])),
}
q, r = la.qr(A, stream=cpu)
cases["qr"] = {"q": encode(q), "r": encode(r)}
u, s, vt = la.svd(R, stream=cpu)
cases["svd"] = {"u": encode(u), "s": encode(s), "vt": encode(vt),
                "s_only": encode(la.svd(R, compute_uv=False, stream=cpu))}
cases["inv"] = {"out": encode(la.inv(A, stream=cpu))}
cases["inv_batch"] = {"x": encode(mx.stack([A, S])), "out": encode(la.inv(mx.stack([A, S]), stream=cpu))}
cases["tri_inv"] = {"lower": encode(la.tri_inv(L, stream=cpu)),
                    "upper": encode(la.tri_inv(L.T, upper=True, stream=cpu))}
cases["cholesky"] = {"lower": encode(la.cholesky(S, stream=cpu)),
                     "upper": encode(la.cholesky(S, upper=True, stream=cpu))}
cases["cholesky_inv"] = {"out": encode(la.cholesky_inv(la.cholesky(S, stream=cpu), stream=cpu))}
cases["pinv"] = {"out": encode(la.pinv(R, stream=cpu))}
cases["det"] = {"out": encode(la.det(A, stream=cpu))}
sign, logabs = la.slogdet(A, stream=cpu)
cases["slogdet"] = {"sign": encode(sign), "logabsdet": encode(logabs)}
w, vecs = la.eigh(S, stream=cpu)
cases["eigh"] = {"w": encode(w), "w_upper": encode(la.eigh(S, UPLO="U", stream=cpu)[0]),
                 "eigvalsh": encode(la.eigvalsh(S, stream=cpu))}
E = mx.array([[2.0, 1.0], [0.0, 3.0]])
cases["eig"] = {"x": encode(E), "values": encode(la.eigvals(E, stream=cpu))}
pv, lo, up = la.lu(A, stream=cpu)
cases["lu"] = {"p": encode(pv), "l": encode(lo), "u": encode(up)}
lu, piv = la.lu_factor(A, stream=cpu)
cases["lu_factor"] = {"lu": encode(lu), "pivots": encode(piv)}
cases["solve"] = {"vector": encode(la.solve(A, b, stream=cpu)), "matrix": encode(la.solve(A, B, stream=cpu))}
cases["solve_triangular"] = {"lower": encode(la.solve_triangular(L, b, stream=cpu)),
                             "upper": encode(la.solve_triangular(L.T, b, upper=True, stream=cpu))}
c1 = mx.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
c2 = mx.array([7.0, -8.0, 9.0])
cases["cross"] = {"a": encode(c1), "b": encode(c2), "out": encode(la.cross(c1, c2)),
                  "axis0": encode(la.cross(c1.T, c2.reshape(3, 1), axis=0))}

cases["cross_default"] = {"out": encode(la.cross(A, b))}

# ---------------------------------------------------------------- fft
x = pattern((8,), 0.4)
xc = x + 1j * pattern((8,), 2.0)
X = pattern((4, 6), 0.9)
X3 = pattern((2, 4, 6), 1.7)
f = mx.fft
cases["fft_inputs"] = {"x": encode(x), "xc": encode(xc), "X": encode(X), "X3": encode(X3)}
cases["fft"] = {
    "out": encode(f.fft(x)),
    "n6": encode(f.fft(x, n=6)),
    "n10": encode(f.fft(x, n=10)),
    "complex": encode(f.fft(xc)),
    "axis0": encode(f.fft(X, axis=0)),
    "ortho": encode(f.fft(x, norm="ortho")),
    "forward": encode(f.fft(x, norm="forward")),
}
cases["ifft"] = {"out": encode(f.ifft(xc)), "n5": encode(f.ifft(xc, n=5))}
cases["rfft"] = {"out": encode(f.rfft(x)), "n5": encode(f.rfft(x, n=5)), "axis0": encode(f.rfft(X, axis=0))}
rx = f.rfft(x)
cases["irfft"] = {"out": encode(f.irfft(rx)), "n7": encode(f.irfft(rx, n=7))}
cases["fft2"] = {"out": encode(f.fft2(X)), "s": encode(f.fft2(X, s=[3, 8])),
                 "axes": encode(f.fft2(X3, axes=[0, 2]))}
cases["ifft2"] = {"out": encode(f.ifft2(f.fft2(X) * 2))}
cases["fftn"] = {"out": encode(f.fftn(X3)), "axes": encode(f.fftn(X3, axes=[1, 2])),
                 "s_axes": encode(f.fftn(X3, s=[3, 5], axes=[0, 1])),
                 "s_last": encode(f.fftn(X3, s=[3, 5], axes=[1, 2]))}
cases["ifftn"] = {"out": encode(f.ifftn(f.fftn(X3) + 1))}
R2 = f.rfft2(X)
cases["rfft2"] = {"out": encode(R2), "s": encode(f.rfft2(X, s=[4, 5]))}
cases["irfft2"] = {"out": encode(f.irfft2(R2)), "s": encode(f.irfft2(R2, s=[4, 5]))}
RN = f.rfftn(X3)
cases["rfftn"] = {"out": encode(RN), "axes": encode(f.rfftn(X3, axes=[0, 1]))}
cases["irfftn"] = {"out": encode(f.irfftn(RN)), "s": encode(f.irfftn(RN, s=[2, 4, 7], axes=[0, 1, 2]))}
sh = mx.arange(12).reshape(3, 4)
cases["fftshift"] = {"x": encode(sh), "out": encode(f.fftshift(sh)), "axes": encode(f.fftshift(sh, axes=[1])),
                     "inverse": encode(f.ifftshift(sh)), "inverse_axes": encode(f.ifftshift(sh, axes=[0]))}
cases["fftfreq"] = {"out": encode(f.fftfreq(8, 0.5)), "odd": encode(f.fftfreq(7))}
cases["rfftfreq"] = {"out": encode(f.rfftfreq(9, 0.1)), "even": encode(f.rfftfreq(8))}

write("random_linalg_fft", cases)
