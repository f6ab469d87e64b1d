"""The Python half of `single_seqlen` (examples/single_seqlen.rs): one forward pass of a
GLM-4.5-MoE-architecture model with random weights, built with mlx-lm 0.32.0's own
`glm4_moe.py` (imported without transformers), over a prompt of one length, timed.

    pip install "mlx[cpu]==0.32.2" && pip install mlx-lm==0.32.0 --no-deps
    python3 examples/python_single_seqlen.py [SEQ_LEN ...] [--preset small|glm45-air|NAME]
        [--runs N] [--warmup N] [--seed S] [--save-output FILE.npy]
        [--compare-output FILE.npy] [--tolerance T] [--serve]

The options, the prompt and the weights are those of the Rust side: the weights come from
`presets.random_model` (the twin of `mlx_lm::presets`), so both sides print the same checksum;
`--compare-output` checks the logits against the `.npy` that the Rust side wrote with
`--save-output` (or the reverse) before anything is timed. `--serve` draws the weights once
and answers the benches' `compare` runner (JSON lines, `serve_jsonl.py`): one forward pass per
iteration at each setup's length.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    import mlx.core as mx
except ImportError as e:
    raise SystemExit(f"error: MLX is not importable ({e}): pip install 'mlx[cpu]==0.32.2'")

import presets  # noqa: E402

SMALL_CONFIG = HERE / "glm45-moe-small.json"
KEYS = [
    "model_type", "hidden_size", "num_hidden_layers", "first_k_dense_replace",
    "intermediate_size", "moe_intermediate_size", "n_routed_experts", "num_experts_per_tok",
    "n_shared_experts", "n_group", "topk_group", "num_attention_heads", "num_key_value_heads",
    "head_dim", "partial_rotary_factor", "use_qk_norm", "attention_bias", "norm_topk_prob",
    "routed_scaling_factor", "rope_theta", "vocab_size", "quantization",
]


def preset_config(name):
    """The config dict of a preset name, and what it is."""
    if name == "small":
        return json.loads(SMALL_CONFIG.read_text()), f"small GLM-4.5-MoE (examples/{SMALL_CONFIG.name})"
    name = "glm45-air-3bit" if name == "glm45-air" else name
    return presets.config(name), name


def prompt(seq_len, vocab):
    return mx.array([[(7919 * i + 13) % vocab for i in range(seq_len)]], dtype=mx.int32)


def import_glm4_moe():
    """mlx-lm 0.32.0's glm4_moe module, or a clear error when it cannot be imported here."""
    try:
        return presets.mlx_lm_module("models.glm4_moe")
    except (ImportError, SystemExit) as e:
        raise SystemExit(
            f"error: cannot import mlx-lm's glm4_moe model file ({e}); this comparison needs "
            "mlx-lm 0.32.0: pip install mlx-lm==0.32.0 --no-deps"
        )


def mlx_lm_version():
    try:
        from importlib.metadata import version

        return version("mlx-lm")
    except Exception:  # not installed as a distribution: the sources are still importable
        return "unknown"


def compare(logits, path, tolerance):
    reference = mx.load(str(path)).astype(mx.float32)
    if reference.shape != logits.shape:
        raise SystemExit(f"error: {path}: shape {reference.shape}, but these logits are {logits.shape}")
    diff = mx.abs(logits - reference).max().item()
    scale = max(mx.abs(reference).max().item(), 1.0)
    same = (logits.argmax(-1) == reference.argmax(-1)).sum().item()
    print(f"output vs {path}: largest difference {diff:e} (largest |logit| {scale}), "
          f"same argmax at {same}/{logits.shape[1]} positions")
    if not diff <= tolerance * scale:
        raise SystemExit(f"error: the outputs disagree: {diff:e} > {tolerance} * {scale}")
    print(f"outputs agree (within {tolerance} * {scale})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("seq_lens", nargs="*", type=int, default=[127])
    p.add_argument("--preset", default="small")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-output", type=pathlib.Path)
    p.add_argument("--compare-output", type=pathlib.Path)
    p.add_argument("--tolerance", type=float, default=1e-2)
    p.add_argument("--serve", action="store_true", help="answer the benches' compare runner")
    o = p.parse_args()
    if any(n <= 0 for n in o.seq_lens) or o.runs <= 0:
        p.error("SEQ_LEN and --runs must be positive")

    config, label = preset_config(o.preset)
    import_glm4_moe()
    lm_version = mlx_lm_version()
    if o.serve:
        return serve(o, config, label, lm_version)
    print(f"single_seqlen (Python, mlx-lm {lm_version}) — MLX {mx.__version__}")
    if lm_version != "0.32.0":
        print(f"warning: mlx-lm {lm_version}, not the 0.32.0 the comparison is written for")
    print(f"device: {mx.default_device()}")
    print(f"preset: {label}, seed {o.seed}")
    for key in KEYS:
        if key in config:
            print(f"  {key}: {json.dumps(config[key], separators=(',', ':'))}")
    start = time.perf_counter()
    model = presets.random_model(config, o.seed)
    print(f"weights drawn in {time.perf_counter() - start:.1f} s, "
          f"checksum {presets.checksum(model):016x}")
    for seq_len in o.seq_lens:
        time_forward(model, config, seq_len, o, several=len(o.seq_lens) > 1)


def per_length(path, seq_len, several):
    """`NAME-LEN.EXT` for one of several lengths (as `single_seqlen`)."""
    return path.with_name(f"{path.stem}-{seq_len}{path.suffix}") if several else path


def time_forward(model, config, seq_len, o, several):
    """Checks (or saves) the output at one length, then times the forward pass."""
    tokens = prompt(seq_len, config["vocab_size"])
    print(f"sequence length: {seq_len}")
    logits = model(tokens).astype(mx.float32)
    mx.eval(logits)
    if o.save_output is not None:
        path = per_length(o.save_output, seq_len, several)
        mx.save(str(path), logits)
        print(f"logits {list(logits.shape)} saved to {path}")
    if o.compare_output is not None:
        compare(logits, per_length(o.compare_output, seq_len, several), o.tolerance)

    for _ in range(o.warmup):
        mx.eval(model(tokens))
    ms = []
    for _ in range(o.runs):
        start = time.perf_counter()
        mx.eval(model(tokens))
        ms.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(ms)
    print(f"forward, {seq_len} tokens: median {median:.2f} ms (min {min(ms):.2f}, "
          f"max {max(ms):.2f}) over {o.runs} runs after {o.warmup} warm-up; "
          f"{seq_len / median * 1e3:.0f} tokens/s")


class ServedForward:
    """The forward pass `--serve` times (setup spec: {"len": L, "save_output"?: FILE,
    "compare_output"?: FILE})."""

    def __init__(self, model, config, tolerance):
        self.model, self.config, self.tolerance = model, config, tolerance
        self.tokens = None

    def setup(self, spec):
        self.tokens = None
        n = spec.get("len")
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"`len` must be a positive length in {spec}")
        tokens = prompt(n, self.config["vocab_size"])
        logits = self.model(tokens).astype(mx.float32)
        mx.eval(logits)
        if spec.get("save_output"):
            mx.save(spec["save_output"], logits)
        if spec.get("compare_output"):
            compare(logits, pathlib.Path(spec["compare_output"]), self.tolerance)
        self.tokens = tokens
        return {"checksum": logits.sum().item(), "shape": list(logits.shape)}

    def run(self, iters):
        start = time.perf_counter_ns()
        for _ in range(iters):
            mx.eval(self.model(self.tokens))
        return (time.perf_counter_ns() - start) / iters


def serve(o, config, label, lm_version):
    import serve_jsonl

    print(f"python_single_seqlen --serve: drawing {label}, seed {o.seed} ...", file=sys.stderr)
    model = presets.random_model(config, o.seed)
    info = serve_jsonl.info_line("python_single_seqlen", preset=label, mlx_lm=lm_version,
                                 weights_checksum=f"{presets.checksum(model):016x}")
    serve_jsonl.serve(info, ServedForward(model, config, o.tolerance))


if __name__ == "__main__":
    main()
