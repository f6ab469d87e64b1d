"""Golden values for tests/optimizers.rs and tests/losses.rs (see README.md beside this file):
three steps of every mlx.optimizers optimizer on a small parameter tree with fixed gradients,
the schedules at several steps, clip_grad_norm, every mlx.nn.losses loss with each reduction,
and a small MLP trained with AdamW and a warm-up/cosine schedule.

Inputs are `pattern(shape, phase) = sin(i * 0.37 + phase)` in float32, computed by both sides.
"""

import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

from golden_common import encode, write


def pattern(shape, phase):
    n = math.prod(shape)
    return mx.sin(mx.arange(n, dtype=mx.float32) * 0.37 + phase).reshape(shape)


def params0():
    return {
        "w": pattern((3, 4), 0.1),
        "b": pattern((4,), 0.2),
        "layers": [{"k": pattern((2, 3), 0.3)}],
    }


def grads_at(step):
    return {
        "w": pattern((3, 4), 1.0 + step),
        "b": pattern((4,), 2.0 + step),
        "layers": [{"k": pattern((2, 3), 3.0 + step)}],
    }


OPTIMIZERS = {
    "sgd": lambda: optim.SGD(0.1),
    "sgd_momentum": lambda: optim.SGD(0.1, momentum=0.9, weight_decay=0.01, dampening=0.1),
    "sgd_nesterov": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: optim.Adam(0.01),
    "adam_bias": lambda: optim.Adam(0.01, betas=[0.8, 0.95], bias_correction=True),
    "adam_cosine": lambda: optim.Adam(optim.cosine_decay(0.01, 4, 0.001)),
    "adamw": lambda: optim.AdamW(0.01),
    "adamw_bias": lambda: optim.AdamW(0.01, weight_decay=0.1, bias_correction=True),
    "lion": lambda: optim.Lion(0.01),
    "lion_wd": lambda: optim.Lion(0.01, betas=[0.8, 0.9], weight_decay=0.1),
    "adafactor": lambda: optim.Adafactor(),
    "adafactor_lr": lambda: optim.Adafactor(
        learning_rate=0.01, relative_step=False, beta_1=0.9, weight_decay=0.01
    ),
    "adafactor_warmup": lambda: optim.Adafactor(warmup_init=True, scale_parameter=False),
    "rmsprop": lambda: optim.RMSprop(0.01),
    "rmsprop_alpha": lambda: optim.RMSprop(0.01, alpha=0.9, eps=1e-6),
}

cases = {"inputs": {"paths": [k for k, _ in tree_flatten(params0())]}}
for k, v in tree_flatten(params0()):
    cases["inputs"][f"params.{k}"] = encode(v)
for step in range(3):
    for k, v in tree_flatten(grads_at(step)):
        cases["inputs"][f"grads.{step}.{k}"] = encode(v)
for name, make in OPTIMIZERS.items():
    opt = make()
    params = params0()
    case = {}
    for step in range(3):
        params = opt.apply_gradients(grads_at(step), params)
        for k, v in tree_flatten(params):
            case[f"params.{step}.{k}"] = encode(v)
    flat_state = tree_flatten(opt.state)
    case["state_paths"] = [k for k, _ in flat_state]
    for k, v in flat_state:
        case[f"state.{k}"] = encode(v)
    cases[f"opt_{name}"] = case

# Schedules.
STEPS = [0, 1, 3, 5, 10, 15, 20, 100]
SCHEDULES = {
    "linear": optim.linear_schedule(0.0, 1e-2, 10),
    "cosine": optim.cosine_decay(1e-2, 10),
    "cosine_end": optim.cosine_decay(1e-2, 10, 1e-4),
    "step": optim.step_decay(1e-1, 0.9, 3),
    "exponential": optim.exponential_decay(1e-1, 0.9),
    "joined": optim.join_schedules(
        [optim.linear_schedule(0.0, 1e-2, 5), optim.cosine_decay(1e-2, 10, 1e-3)], [5]
    ),
}
for name, sched in SCHEDULES.items():
    cases[f"schedule_{name}"] = {
        "steps": STEPS,
        "values": encode(mx.stack([sched(mx.array(s, mx.uint64)) for s in STEPS])),
    }

# clip_grad_norm.
for max_norm in (1.0, 100.0):
    clipped, norm = optim.clip_grad_norm(grads_at(0), max_norm)
    case = {"norm": encode(norm)}
    for k, v in tree_flatten(clipped):
        case[k] = encode(v)
    cases[f"clip_{int(max_norm)}"] = case

write("optimizers", cases)

# Losses.
L = nn.losses
logits = pattern((4, 5), 0.3) * 3.0
indices = mx.array([1, 0, 4, 2], mx.int32)
probs = mx.softmax(pattern((4, 5), 1.1) * 2.0, axis=-1)
weights = mx.abs(pattern((4,), 0.7)) + 0.5
logits_ax0 = pattern((5, 3), 0.9) * 2.0
indices_ax0 = mx.array([4, 0, 2], mx.int32)
preds = pattern((3, 4), 0.2) * 2.0
targs = pattern((3, 4), 1.7) * 2.0
bin_logits = pattern((3, 4), 0.5) * 4.0
bin_targets = (pattern((3, 4), 2.5) > 0).astype(mx.float32)
bin_probs = mx.sigmoid(bin_logits)
bin_weights = mx.abs(pattern((3, 4), 0.1)) + 0.25
log_probs = mx.log(mx.softmax(pattern((3, 5), 0.4) * 2.0, axis=-1))
log_targets = mx.log(mx.softmax(pattern((3, 5), 2.4), axis=-1))
nll_targets = mx.array([2, 0, 4], mx.int32)

lcases = {
    "inputs": {
        "logits": encode(logits),
        "indices": encode(indices),
        "probs": encode(probs),
        "weights": encode(weights),
        "logits_ax0": encode(logits_ax0),
        "indices_ax0": encode(indices_ax0),
        "preds": encode(preds),
        "targs": encode(targs),
        "bin_logits": encode(bin_logits),
        "bin_targets": encode(bin_targets),
        "bin_probs": encode(bin_probs),
        "bin_weights": encode(bin_weights),
        "log_probs": encode(log_probs),
        "log_targets": encode(log_targets),
        "nll_targets": encode(nll_targets),
    }
}
for red in ("none", "mean", "sum"):
    c = {}
    c["ce_indices"] = encode(L.cross_entropy(logits, indices, reduction=red))
    c["ce_probs"] = encode(L.cross_entropy(logits, probs, reduction=red))
    c["ce_smooth"] = encode(L.cross_entropy(logits, indices, label_smoothing=0.2, reduction=red))
    c["ce_probs_smooth"] = encode(L.cross_entropy(logits, probs, label_smoothing=0.1, reduction=red))
    c["ce_weights"] = encode(L.cross_entropy(logits, indices, weights=weights, reduction=red))
    c["ce_axis0"] = encode(L.cross_entropy(logits_ax0, indices_ax0, axis=0, reduction=red))
    # The ignore-index helper: targets equal to 2 are masked out (mlx-lm's ntoks mean).
    per = L.cross_entropy(logits, indices)
    mask = indices != 2
    if red == "none":
        masked = per * mask
    elif red == "sum":
        masked = (per * mask).sum()
    else:
        masked = (per * mask).sum() / mask.sum()
    c["ce_ignore2"] = encode(masked)
    c["bce_logits"] = encode(L.binary_cross_entropy(bin_logits, bin_targets, reduction=red))
    c["bce_probs"] = encode(
        L.binary_cross_entropy(bin_probs, bin_targets, with_logits=False, reduction=red)
    )
    c["bce_weights"] = encode(
        L.binary_cross_entropy(bin_logits, bin_targets, weights=bin_weights, reduction=red)
    )
    c["mse"] = encode(L.mse_loss(preds, targs, reduction=red))
    c["l1"] = encode(L.l1_loss(preds, targs, reduction=red))
    c["nll"] = encode(L.nll_loss(log_probs, nll_targets, reduction=red))
    c["kl"] = encode(L.kl_div_loss(log_probs, log_targets, reduction=red))
    c["smooth_l1"] = encode(L.smooth_l1_loss(preds, targs, reduction=red))
    c["smooth_l1_beta"] = encode(L.smooth_l1_loss(preds, targs, beta=0.5, reduction=red))
    c["huber"] = encode(L.huber_loss(preds, targs, reduction=red))
    c["huber_delta"] = encode(L.huber_loss(preds, targs, delta=0.7, reduction=red))
    lcases[f"reduction_{red}"] = c

write("losses", lcases)

# A small MLP trained with AdamW and a warm-up + cosine schedule (same setup in
# tests/optimizers.rs): x = pattern((64, 4), 0.0), y = sin(2 * x0) + 0.5 * x1 * x2 - x3^2.
x = pattern((64, 4), 0.0) * 2.0
y = (mx.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] - x[:, 3] ** 2).reshape(64, 1)
mlp = {
    "W1": pattern((4, 32), 0.5) * 0.5,
    "b1": mx.zeros((32,)),
    "W2": pattern((32, 1), 1.5) * 0.2,
    "b2": mx.zeros((1,)),
}


def mlp_loss(p):
    h = mx.tanh(x @ p["W1"] + p["b1"])
    out = h @ p["W2"] + p["b2"]
    return L.mse_loss(out, y)


STEPS_MLP = 300
lr = optim.join_schedules(
    [optim.linear_schedule(0.0, 3e-2, 30), optim.cosine_decay(3e-2, STEPS_MLP - 30, 1e-3)], [30]
)
opt = optim.AdamW(lr, weight_decay=0.01)
vg = mx.value_and_grad(mlp_loss)
losses = []
for i in range(STEPS_MLP):
    loss, g = vg(mlp)
    mlp = opt.apply_gradients(g, mlp)
    mx.eval(mlp, opt.state)
    losses.append(loss.item())
final = mlp_loss(mlp).item()
print(f"MLP: initial loss {losses[0]:.6f}, final loss {final:.6f}")
mcase = {
    "x": encode(x),
    "y": encode(y),
    "initial_loss": losses[0],
    "loss_at_100": losses[100],
    "final_loss": final,
    "threshold": 0.01,
}
for k, v in mlp.items():
    mcase[f"final.{k}"] = encode(v)
for k, v in {
    "W1": pattern((4, 32), 0.5) * 0.5,
    "W2": pattern((32, 1), 1.5) * 0.2,
}.items():
    mcase[f"init.{k}"] = encode(v)
assert final < mcase["threshold"], final
write("optimizers_mlp", {"mlp": mcase})
