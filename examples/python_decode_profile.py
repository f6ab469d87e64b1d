"""The Python twin of the Rust `decode_profile` example: where the time of one decode step goes,
with mlx-lm 0.32.0's own model and cache on a random-weight preset (the same weights as the
Rust side: both print the checksum).

    python3 examples/python_decode_profile.py --preset qwen3-30b-a3b-4bit [--prompt-len 64]
        [--steps 32] [--warmup 8] [--seed 0]

The same measurements as `examples/decode_profile.rs` (see its doc comment), printed in the same
lines: the primitives of one step's graph (`mx.export_to_dot`), then per synchronous step the
graph build, the `mx.async_eval` return (MLX encodes every node in the calling thread) and the
wait for the GPU, and the time per token of `generate_step`'s pipelined loop.

Needs `mlx==0.32.2` and `mlx-lm==0.32.0` (`pip install mlx-lm==0.32.0 --no-deps`).
"""

import argparse
import collections
import io
import pathlib
import sys
import time

import mlx.core as mx

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import presets  # noqa: E402  (examples/presets.py: imports mlx-lm without its __init__)


def step(model, cache, y):
    """One decode step's graph: `generate_step`'s `_step` without logits processors."""
    logits = model(y[None], cache=cache)[:, -1, :]
    logprobs = logits - mx.logsumexp(logits, keepdims=True)
    return mx.argmax(logprobs, axis=-1), logprobs


def primitives(outputs):
    """How many primitives the graph of `outputs` has, and of which kinds (most first)."""
    text = io.StringIO()
    mx.export_to_dot(text, *outputs)
    kinds = collections.Counter(
        line.split('label ="')[1].split('"')[0]
        for line in text.getvalue().splitlines()
        if "shape=rectangle" in line
    )
    listed = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    return sum(kinds.values()), ", ".join(f"{k} {n}" for k, n in listed)


def summary(samples):
    """`median [min–max]` of `samples` (seconds) in ms."""
    s = sorted(samples)
    return f"{s[len(s) // 2] * 1e3:.3f} [{s[0] * 1e3:.3f}–{s[-1] * 1e3:.3f}]"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True, help="mlx-lm/presets/NAME.json or FILE.json")
    p.add_argument("--seed", type=int, default=0, help="draws the weights (default 0)")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--warmup", type=int, default=8)
    args = p.parse_args()
    if args.prompt_len < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--prompt-len and --steps must be at least 1, --warmup at least 0")
    cache_module = presets.mlx_lm_module("models.cache")

    config = presets.config(args.preset)
    print(f"drawing the random weights of {args.preset} ...", file=sys.stderr)
    model = presets.random_model(config, seed=args.seed)
    model.eval()
    print(f"weights checksum: {presets.checksum(model):016x}")
    vocab = config["vocab_size"]
    prompt = mx.array([(7919 * i + 13) % vocab for i in range(args.prompt_len)], mx.uint32)

    with mx.stream(mx.new_stream(mx.default_device())):
        cache = cache_module.make_prompt_cache(model)
        y, _ = step(model, cache, prompt)
        mx.eval(y)

        build, encode, wait, nodes = [], [], [], (0, "")
        for n in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            out = step(model, cache, y)
            built = time.perf_counter() - t0
            if n == 0:
                nodes = primitives(out)
            t1 = time.perf_counter()
            mx.async_eval(*out)
            t2 = time.perf_counter()
            mx.eval(*out)
            t3 = time.perf_counter()
            if n >= args.warmup:
                build.append(built)
                encode.append(t2 - t1)
                wait.append(t3 - t2)
            y = out[0]
        total = [b + e + w for b, e, w in zip(build, encode, wait)]

        queued = step(model, cache, y)
        mx.async_eval(*queued)
        start = time.perf_counter()
        for _ in range(args.steps):
            following = step(model, cache, queued[0])
            mx.async_eval(*following)
            queued[0].item()
            queued = following
        pipelined = (time.perf_counter() - start) / args.steps
        mx.eval(*queued)

    print(f"decode profile: {args.preset} on {mx.default_device()}, prompt {args.prompt_len} "
          f"tokens, {args.steps} steps after {args.warmup} warm-up")
    print(f"graph: {nodes[0]} primitives per step: {nodes[1]}")
    print(f"build ms: {summary(build)}")
    print(f"encode ms: {summary(encode)}")
    print(f"wait ms: {summary(wait)}")
    print(f"synchronous step ms: {summary(total)}")
    print(f"pipelined ms per token: {pipelined * 1e3:.3f} ({1 / pipelined:.1f} tok/s)")


if __name__ == "__main__":
    main()
