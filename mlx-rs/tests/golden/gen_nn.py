"""Golden values for tests/nn_layers.rs and tests/nn_module.rs (see README.md beside this file):
forward passes of mlx.nn layers, nn.quantize on a small model, parameter paths of nested
modules (tree_flatten of model.parameters()), and nn.value_and_grad.

Weights and inputs are `pattern(shape, phase) = sin(i * 0.37 + phase)` in float32 (scaled where
noted), computed by both sides, and set on the Python layers with `load_weights`.
"""

import math

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from golden_common import encode, write


def pattern(shape, phase, scale=1.0):
    n = math.prod(shape)
    return (mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase) * scale).reshape(shape)


cases = {}

# Linear, with and without bias, on 2-D and 3-D inputs.
lin = nn.Linear(6, 4)
lin.load_weights([("weight", pattern((4, 6), 0.1)), ("bias", pattern((4,), 0.2))])
lin_nb = nn.Linear(6, 4, bias=False)
lin_nb.load_weights([("weight", pattern((4, 6), 0.1))])
x2 = pattern((3, 6), 0.3)
x3 = pattern((2, 3, 6), 0.4)
cases["linear"] = {
    "bias_2d": encode(lin(x2)),
    "bias_3d": encode(lin(x3)),
    "nobias_3d": encode(lin_nb(x3)),
    "paths": [k for k, _ in tree_flatten(lin.parameters())],
}

# Embedding: lookup and as_linear.
emb = nn.Embedding(10, 4)
emb.load_weights([("weight", pattern((10, 4), 0.5))])
idx = mx.array([[1, 3, 9], [0, 0, 2]], dtype=mx.int32)
cases["embedding"] = {"lookup": encode(emb(idx)), "as_linear": encode(emb.as_linear(pattern((2, 4), 0.6)))}

# Normalizations.
xn = pattern((2, 3, 8), 0.7, 3.0)
rms = nn.RMSNorm(8, eps=1e-5)
rms.load_weights([("weight", pattern((8,), 0.8))])
ln = nn.LayerNorm(8, eps=1e-5)
ln.load_weights([("weight", pattern((8,), 0.9)), ("bias", pattern((8,), 1.0))])
ln_nobias = nn.LayerNorm(8, eps=1e-6, bias=False)
ln_nobias.load_weights([("weight", pattern((8,), 0.9))])
ln_plain = nn.LayerNorm(8, eps=1e-5, affine=False)
cases["norm"] = {
    "rms": encode(rms(xn)),
    "ln": encode(ln(xn)),
    "ln_nobias": encode(ln_nobias(xn)),
    "ln_plain": encode(ln_plain(xn)),
    "ln_nobias_paths": [k for k, _ in tree_flatten(ln_nobias.parameters())],
    "ln_plain_paths": [k for k, _ in tree_flatten(ln_plain.parameters())],
}

# RoPE: [batch, heads, seq, head_dim].
xr = pattern((1, 2, 5, 8), 1.1)
cases["rope"] = {
    "default": encode(nn.RoPE(8)(xr)),
    "traditional_offset": encode(nn.RoPE(8, traditional=True)(xr, offset=3)),
    "partial_base_scale": encode(nn.RoPE(4, base=500.0, scale=0.5)(xr, offset=2)),
}

# Llama 3 rope scaling frequencies, written as mlx-lm's Llama3RoPE computes them.
def llama3_freqs(dims, base, factor, low, high, old):
    low_wl, high_wl = old / low, old / high
    freqs = base ** (mx.arange(0, dims, 2) / dims)
    wavelens = 2 * mx.pi * freqs
    freqs = mx.where(wavelens > low_wl, freqs * factor, freqs)
    medium = (wavelens > high_wl) & (wavelens < low_wl)
    smooth = (old / wavelens - low) / (high - low)
    smooth_freqs = freqs / ((1 - smooth) / factor + smooth)
    return mx.where(medium, smooth_freqs, freqs)


f = llama3_freqs(64, 500000.0, 8.0, 1.0, 4.0, 8192.0)
xl = pattern((1, 1, 4, 64), 1.2)
cases["llama3"] = {
    "freqs": encode(f),
    "rope": encode(mx.fast.rope(xl, 64, traditional=False, base=None, scale=1.0, offset=7, freqs=f)),
}

# Activations.
xa = pattern((3, 7), 1.3, 4.0)
g = pattern((3, 7), 1.4, 2.0)
cases["act"] = {
    "silu": encode(nn.silu(xa)),
    "gelu": encode(nn.gelu(xa)),
    "gelu_approx": encode(nn.gelu_approx(xa)),
    "gelu_fast_approx": encode(nn.gelu_fast_approx(xa)),
    "relu": encode(nn.relu(xa)),
    "leaky_relu": encode(nn.leaky_relu(xa, negative_slope=0.1)),
    "sigmoid": encode(nn.sigmoid(xa)),
    "tanh": encode(nn.tanh(xa)),
    "softmax": encode(nn.softmax(xa, axis=-1)),
    "log_softmax": encode(nn.log_softmax(xa, axis=-1)),
    "swiglu": encode(nn.silu(g) * xa),
}


# Quantized layers in every mode, from a Linear.
def quant_case(mode, group_size=None, bits=None, bias=True):
    l = nn.Linear(64, 8, bias=bias)
    w = [("weight", pattern((8, 64), 1.5, 0.5))]
    if bias:
        w.append(("bias", pattern((8,), 1.6)))
    l.load_weights(w)
    q = nn.QuantizedLinear.from_linear(l, group_size, bits, mode=mode)
    xq = pattern((3, 64), 1.7)
    return {
        "out": encode(q(xq)),
        "group_size": q.group_size,
        "bits": q.bits,
        "paths": [k for k, _ in tree_flatten(q.parameters())],
        "trainable": [k for k, _ in tree_flatten(q.trainable_parameters())],
        "weight_shape": list(q.weight.shape),
        "scales_shape": list(q.scales.shape),
    }


cases["qlinear"] = {
    "affine": quant_case("affine"),
    "affine_g32_b8_nobias": quant_case("affine", 32, 8, bias=False),
    "mxfp4": quant_case("mxfp4"),
    "nvfp4": quant_case("nvfp4"),
    "mxfp8": quant_case("mxfp8"),
}

qe = nn.QuantizedEmbedding.from_embedding(_e := nn.Embedding(10, 64), 32, 4)
_e.load_weights([("weight", pattern((10, 64), 1.8))])
qe = nn.QuantizedEmbedding.from_embedding(_e, 32, 4)
cases["qembedding"] = {
    "lookup": encode(qe(idx)),
    "as_linear": encode(qe.as_linear(pattern((2, 64), 1.9))),
    "paths": [k for k, _ in tree_flatten(qe.parameters())],
}


# A nested model: embedding, a list of blocks (attention projections, an optional bias, a
# norm, an MLP), a final norm and a head; quantized with a per-path override.
class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=True)


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gate_proj = nn.Linear(d, 2 * d, bias=False)
        self.up_proj = nn.Linear(d, 2 * d, bias=False)
        self.down_proj = nn.Linear(2 * d, d, bias=False)

    def __call__(self, x):
        return self.down_proj(nn.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.self_attn = Attention(d)
        self.input_layernorm = nn.RMSNorm(d)
        self.mlp = Mlp(d)

    def __call__(self, x):
        h = self.input_layernorm(x)
        h = self.self_attn.o_proj(self.self_attn.q_proj(h))
        return x + self.mlp(h)


class Model(nn.Module):
    def __init__(self, vocab, d, n):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = [Block(d) for _ in range(n)]
        self.norm = nn.RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def __call__(self, tokens):
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


model = Model(16, 64, 2)
names = [k for k, _ in tree_flatten(model.parameters())]
shapes = {k: v.shape for k, v in tree_flatten(model.parameters())}
model.load_weights([(k, pattern(shapes[k], 0.01 * i, 0.2)) for i, k in enumerate(names)])
tokens = mx.array([[1, 5, 7, 2]], dtype=mx.int32)
dense_out = model(tokens)


def loss_fn(m, t):
    return m(t).square().mean()


loss, grads = nn.value_and_grad(model, loss_fn)(model, tokens)
model.freeze()
model.unfreeze(keys=["weight"])  # all weights, not biases
frozen_trainable = [k for k, _ in tree_flatten(model.trainable_parameters())]
model.unfreeze()


def predicate(path, m):
    if path == "lm_head":
        return {"group_size": 32, "bits": 8, "mode": "affine"}
    if path.endswith("o_proj"):
        return False
    return hasattr(m, "to_quantized")


nn.quantize(model, group_size=64, bits=4, class_predicate=predicate)
cases["model"] = {
    "paths": names,
    "dense_out": encode(dense_out),
    "loss": encode(loss),
    "grad_paths": [k for k, _ in tree_flatten(grads)],
    "grad_q_proj": encode(grads["layers"][1]["self_attn"]["q_proj"]["weight"]),
    "grad_embed": encode(grads["embed_tokens"]["weight"]),
    "weights_trainable": frozen_trainable,
    "quantized_paths": [k for k, _ in tree_flatten(model.parameters())],
    "quantized_trainable": [k for k, _ in tree_flatten(model.trainable_parameters())],
    "quantized_out": encode(model(tokens)),
}

seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2, bias=False))
cases["sequential"] = {"paths": [k for k, _ in tree_flatten(seq.parameters())]}

write("nn", cases)
