"""The Python twin of the Rust `generate` example: mlx-lm 0.32.0's own `generate_step` (chunked
prefill, then an `async_eval`-pipelined decode) on a model directory or a random-weight preset,
timed as `mlx_lm.generate --verbose` times it, from token ids (no tokenizer).

    python3 examples/python_generate.py --model DIR --prompt-tokens 1,5,9 --max-tokens 100
    python3 examples/python_generate.py --preset mixtral-8x7b-4bit --seed 0 \
        --prompt-tokens @prompt.txt --max-tokens 128 --ignore-eos

`--preset` also takes a config file (`examples/presets-small/*.json`). `--serve` loads the
model once and answers the benches' `compare` runner (JSON lines, `serve_jsonl.py`; see
`ServedGeneration`).

It prints the generated ids (`tokens: 4,8,15`), then the three lines of mlx-lm's report:

    Prompt: N tokens, X tokens-per-sec       (prompt tokens / time to the first token)
    Generation: M tokens, Y tokens-per-sec   (tokens / time since the first token)
    Peak memory: Z GB                        (mx.get_peak_memory() / 1e9)

with the definitions of mlx-lm's `stream_generate` (the loop below is its loop, less the
detokenizer). Generation stops after `--max-tokens` or at an EOS id of the config
(`eos_token_id`, which mlx-lm's `load_config` also takes from `generation_config.json`) unless
`--ignore-eos`; the EOS token is printed and counted, as mlx-lm counts it.

mlx-lm needs no `transformers` to run a model, but `mlx_lm/__init__.py`, `mlx_lm.generate`,
`mlx_lm.utils` and `mlx_lm.tokenizer_utils` import it (and `huggingface_hub`) at the top. This
script imports the submodules without the package's `__init__` and, before that, registers
stand-ins for `transformers` and `huggingface_hub` whose names exist for those imports but
raise if anything is ever called (nothing in the path from a local directory to generated ids
calls them; only `AutoTokenizer.register`, which `tokenizer_utils` calls at import, is a
no-op). The real packages are never imported, installed or not. Models load through mlx-lm's own `utils.load_model` (config.json, the
`mistral -> llama` remapping, `sanitize`, quantization as the checkpoint holds it, strict
`load_weights`, every parameter evaluated).

Needs `mlx==0.32.2` and `mlx-lm==0.32.0` (`pip install mlx-lm==0.32.0 --no-deps`).
"""

import argparse
import pathlib
import sys
import time
import types

import mlx.core as mx

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import presets  # noqa: E402  (examples/presets.py: imports mlx-lm without its __init__)


class _Absent(type):
    """The metaclass of a stand-in class: any attribute of the class itself is an error."""

    def __getattr__(cls, name):
        raise ImportError(f"{cls.__module__}.{cls.__name__}.{name}: {cls._why}")


def _stand_in(module_name, why):
    """A module whose every attribute is a stand-in class that raises when used (but for
    `register`, a no-op)."""
    module = types.ModuleType(module_name)
    module.__path__ = []
    classes = {}

    def attribute(name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in classes:

            def refuse(*_args, **_kwargs):
                raise ImportError(f"{module_name}.{name}: {why}")

            namespace = {
                "__module__": module_name,
                "_why": why,
                "__init__": refuse,
                # `tokenizer_utils` registers its NewlineTokenizer at import time.
                "register": classmethod(lambda cls, *_args, **_kwargs: None),
            }
            classes[name] = _Absent(name, (), namespace)
        return classes[name]

    module.__getattr__ = attribute
    return module


def install_stand_ins():
    """Registers the stand-ins (unless a real module is already imported)."""
    why = "not imported by python_generate.py (generation from token ids needs no tokenizer)"
    for name in ("transformers", "transformers.tokenization_utils_base", "huggingface_hub"):
        if name not in sys.modules:
            sys.modules[name] = _stand_in(name, why)


def parse_tokens(text):
    """`1,2,3`, or `@FILE` holding ids separated by commas or whitespace."""
    if text.startswith("@"):
        text = pathlib.Path(text[1:]).read_text()
    ids = [int(t) for t in text.replace(",", " ").split()]
    if not ids:
        raise SystemExit("--prompt-tokens: no token ids")
    return ids


def eos_ids(config):
    """The config's `eos_token_id` (an int or a list) as a set."""
    eos = config.get("eos_token_id")
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list) else {eos}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="an mlx-community model directory")
    source.add_argument("--preset", help="a random-weight preset (mlx-lm/presets/NAME.json)")
    p.add_argument("--prompt-tokens", help="prompt ids: 1,2,3 or @FILE")
    p.add_argument("--max-tokens", type=int, default=100, help="-1: no limit (default 100)")
    p.add_argument("--temp", type=float, default=0.0, help="sampling temperature (0: greedy)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--min-p", type=float, default=0.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds mx.random for sampling, and draws a preset's weights (default 0)",
    )
    p.add_argument("--prefill-step-size", type=int, default=2048)
    p.add_argument("--ignore-eos", action="store_true", help="do not stop at EOS ids")
    p.add_argument("--serve", action="store_true",
                   help="answer the benches' compare runner (no --prompt-tokens needed)")
    args = p.parse_args()
    if not args.serve and args.prompt_tokens is None:
        p.error("the following arguments are required: --prompt-tokens")
    return args


def run_generation(generate, model, prompt, max_tokens, sampler, prefill_step_size, eos):
    """mlx-lm's `stream_generate`, less the detokenizer: (ids, prompt tok/s, generated
    tokens, generation tok/s)."""
    token_generator = generate.generate_step(
        prompt,
        model,
        max_tokens=max_tokens,
        sampler=sampler,
        prefill_step_size=prefill_step_size,
    )
    tokens = []
    with generate.wired_limit(model, [generate.generation_stream]):
        tic = time.perf_counter()
        for n, (token, _logprobs) in enumerate(token_generator):
            if n == 0:
                prompt_time = time.perf_counter() - tic
                prompt_tps = prompt.size / prompt_time
                tic = time.perf_counter()
            tokens.append(token)
            if token in eos:
                break
            if (n + 1) == max_tokens:
                break
        generation_tokens = n + 1
        generation_tps = generation_tokens / (time.perf_counter() - tic)
    return tokens, prompt_tps, generation_tokens, generation_tps


class ServedGeneration:
    """The generations `--serve` times: a setup (`{"prompt": [ids], "check_tokens": N,
    "max_tokens": M, "metric": "decode"|"prefill"}`) generates N tokens and answers them; an
    iteration is one generation of M tokens, in nanoseconds per generated token (decode:
    1 / generation tok/s) or per prompt token (prefill: 1 / prompt tok/s), as the Rust side's
    `--serve`. EOS ids do not stop these generations."""

    def __init__(self, args, generate, model, sampler):
        self.args, self.generate, self.model, self.sampler = args, generate, model, sampler
        self.prompt = None

    def _generate(self, max_tokens):
        out = run_generation(self.generate, self.model, self.prompt, max_tokens, self.sampler,
                             self.args.prefill_step_size, set())
        # mlx-lm's loop leaves one step queued after the last token: wait for it outside the
        # clock, so that it does not run into the next generation's time.
        mx.synchronize(self.generate.generation_stream)
        return out

    def setup(self, spec):
        self.prompt = None
        ids = spec.get("prompt")
        if not isinstance(ids, list) or not ids:
            raise ValueError(f"no `prompt` ids in {spec}")
        counts = {}
        for key in ("check_tokens", "max_tokens"):
            n = spec.get(key)
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"no `{key}` in {spec}")
            counts[key] = n
        if spec.get("metric") not in ("decode", "prefill"):
            raise ValueError(f"`metric` must be decode or prefill, got {spec.get('metric')!r}")
        self.metric = spec["metric"]
        self.max_tokens = counts["max_tokens"]
        self.prompt = mx.array(ids)
        tokens, prompt_tps, _, generation_tps = self._generate(counts["check_tokens"])
        return {"checksum": float(sum(tokens)), "tokens": tokens, "prompt_tps": prompt_tps,
                "generation_tps": generation_tps}

    def run(self, iters):
        total = 0.0
        for _ in range(iters):
            _, prompt_tps, _, generation_tps = self._generate(self.max_tokens)
            total += 1e9 / (prompt_tps if self.metric == "prefill" else generation_tps)
        return total / iters


def serve(args, generate, model, sampler):
    import serve_jsonl

    info = serve_jsonl.info_line("python_generate", preset=args.preset or args.model,
                                 weights_checksum=getattr(args, "weights_checksum", None))
    serve_jsonl.serve(info, ServedGeneration(args, generate, model, sampler))


def main():
    args = parse_args()
    if args.max_tokens == 0:
        raise SystemExit("--max-tokens must be non-zero (use -1 for no limit)")
    install_stand_ins()
    generate = presets.mlx_lm_module("generate")
    sample_utils = presets.mlx_lm_module("sample_utils")
    utils = presets.mlx_lm_module("utils")

    mx.random.seed(args.seed)
    if args.preset is not None:
        config = presets.config(args.preset)
        model = presets.random_model(config, seed=args.seed)
        model.eval()
        args.weights_checksum = f"{presets.checksum(model):016x}"
        print(f"weights checksum: {args.weights_checksum}", file=sys.stderr if args.serve else sys.stdout)
        # As the Rust side: the peak counts from here (the weights stay in it).
        mx.reset_peak_memory()
    else:
        model, config = utils.load_model(pathlib.Path(args.model))

    sampler = sample_utils.make_sampler(args.temp, args.top_p, args.min_p, 1, top_k=args.top_k)
    if args.serve:
        return serve(args, generate, model, sampler)
    prompt = mx.array(parse_tokens(args.prompt_tokens))
    eos = set() if args.ignore_eos else eos_ids(config)
    tokens, prompt_tps, generation_tokens, generation_tps = run_generation(
        generate, model, prompt, args.max_tokens, sampler, args.prefill_step_size, eos)
    peak_memory = mx.get_peak_memory() / 1e9

    print("=" * 10)
    print("tokens: " + ",".join(str(t) for t in tokens))
    print("=" * 10)
    print(f"Prompt: {prompt.size} tokens, {prompt_tps:.3f} tokens-per-sec")
    print(f"Generation: {generation_tokens} tokens, {generation_tps:.3f} tokens-per-sec")
    print(f"Peak memory: {peak_memory:.3f} GB")


if __name__ == "__main__":
    main()
