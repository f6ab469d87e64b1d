"""Golden values for mlx-lm's samplers and logits processors (mlx-lm 0.32.0, MLX 0.32.2).

Writes sample.json next to this file. Only `mlx_lm/sample_utils.py` is loaded (through importlib),
so none of mlx-lm's heavier imports are needed:

    pip download mlx-lm==0.32.0 --no-deps -d /tmp/mlxlm && (cd /tmp/mlxlm && unzip -o *.whl)
    MLX_LM_SAMPLE_UTILS=/tmp/mlxlm/mlx_lm/sample_utils.py python3 gen_sample.py
"""

import importlib.util
import json
import os
import pathlib

import mlx.core as mx

path = os.environ.get("MLX_LM_SAMPLE_UTILS", "/tmp/mlxlm/mlx_lm/sample_utils.py")
spec = importlib.util.spec_from_file_location("sample_utils", path)
su = importlib.util.module_from_spec(spec)
spec.loader.exec_module(su)

VOCAB = 32
BATCH = 2
DRAWS = 6

# Peaked-but-not-too-peaked logits so that each filter removes something.
logits = mx.random.normal((BATCH, VOCAB), key=mx.random.key(7)) * 2.5
logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
mx.eval(logprobs)

settings = [
    dict(temp=0.0),
    dict(temp=1.0),
    dict(temp=0.7),
    dict(temp=1.0, top_p=0.9),
    dict(temp=1.0, top_p=0.5),
    dict(temp=1.0, min_p=0.05),
    dict(temp=1.0, min_p=0.2, min_tokens_to_keep=3),
    dict(temp=1.0, top_k=5),
    dict(temp=1.0, top_k=1),
    dict(temp=1.0, xtc_probability=0.5, xtc_threshold=0.1),
    dict(temp=1.0, xtc_probability=1.0, xtc_threshold=0.05, xtc_special_tokens=[0, 5]),
    dict(temp=0.8, top_p=0.95, min_p=0.02, top_k=10),
    dict(temp=1.3, top_p=0.8, min_p=0.05, xtc_probability=0.7, xtc_threshold=0.08, top_k=12),
]

cases = []
for i, s in enumerate(settings):
    seed = 100 + i
    sampler = su.make_sampler(**s)
    mx.random.seed(seed)
    draws = []
    for _ in range(DRAWS):
        y = sampler(logprobs)
        mx.eval(y)
        draws.append(y.tolist())
    cases.append(dict(settings=s, seed=seed, draws=draws))

# The filters alone (outputs with -inf as None).
def dump(a):
    return [[None if v == float("-inf") else v for v in row] for row in a.tolist()]

filters = dict(
    top_p_0_7=dump(su.apply_top_p(logprobs, 0.7)),
    min_p_0_1=dump(su.apply_min_p(logprobs, 0.1)),
    min_p_0_3_keep_4=dump(su.apply_min_p(logprobs, 0.3, 4)),
    top_k_4=dump(su.apply_top_k(logprobs, 4)),
)

# Logits processors, in make_logits_processors' order.
tokens = [3, 7, 7, 1, 30, 3, 3, 12, 7, 0, 5, 5]
proc_logits = mx.random.normal((1, VOCAB), key=mx.random.key(11)) * 3.0
mx.eval(proc_logits)
proc_logits_list = proc_logits.tolist()
processor_settings = [
    dict(repetition_penalty=1.3, repetition_context_size=5),
    dict(repetition_penalty=1.3, repetition_context_size=20),
    dict(presence_penalty=0.5, presence_context_size=6),
    dict(frequency_penalty=0.7, frequency_context_size=8),
    dict(logit_bias={3: 2.5, 7: -1.0, 31: 4.0}),
    dict(
        logit_bias={3: 2.5, 9: -1.5},
        repetition_penalty=1.2,
        repetition_context_size=10,
        presence_penalty=0.4,
        presence_context_size=4,
        frequency_penalty=0.3,
        frequency_context_size=12,
    ),
]
processors = []
for s in processor_settings:
    # The repetition and presence processors write into their input (`logits[:, t] = ..`):
    # give each case its own copy.
    out = mx.array(proc_logits_list)
    for p in su.make_logits_processors(**s):
        out = p(mx.array(tokens), out)
    mx.eval(out)
    s = dict(s)
    if "logit_bias" in s:
        s["logit_bias"] = [[k, v] for k, v in s["logit_bias"].items()]
    processors.append(dict(settings=s, out=out.tolist()))

out = dict(
    logprobs=logprobs.tolist(),
    cases=cases,
    filters=filters,
    tokens=tokens,
    proc_logits=proc_logits_list,
    processors=processors,
)
(pathlib.Path(__file__).parent / "sample.json").write_text(json.dumps(out, indent=1) + "\n")
print("wrote", len(cases), "sampler cases,", len(processors), "processor cases")
