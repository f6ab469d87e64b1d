"""Goldens of mlx-lm 0.32.0's tuner for `tests/tuner.rs` (MLX 0.32.2, CPU).

Writes `tuner.json` beside this file and, under `tests/fixtures/tuner/`, adapter directories
written by mlx-lm itself (`adapter_config.json` + `adapters.safetensors`) and small jsonl data:

- adapters (LoRA on llama_f32 and on qwen3_moe_f32's experts, DoRA on llama_f32, QLoRA on
  llama_q4 and on qwen3_moe_q4's quantized experts) made by mlx-lm's `linear_to_lora_layers`
  after `model.freeze()`, with every adapter parameter then set to fixed random values (lora_b
  non-zero, so gradients reach lora_a), saved as mlx-lm's trainer saves them; for each, the
  logits of a prompt and the logits after mlx-lm's `fuse` (for llama_q4 also with
  `--dequantize`), and one training step: `default_loss` and
  `nn.value_and_grad` on a fixed batch (loss, ntoks and every adapter gradient), then
  (llama_lora_py) one AdamW update (lr 1e-2) of the adapter parameters;
- the adapter directory `llama_lora_rs` written by the Rust side (`tests/tuner.rs`, ignored test
  `write_rust_adapter_fixture`), loaded with mlx-lm's `load_adapters`: its logits;
- the model directory `qwen3_moe_q4_fused_rs` that the Rust side fused (ignored test
  `write_rust_fused_fixture`: mlx-lm's quantized MoE adapters merged and re-quantized), loaded
  strictly into mlx-lm's model: its logits;
- datasets: `text`, `prompt`/`completion` (with and without `mask_prompt`) and `messages`
  (with `mask_prompt`) records through mlx-lm's dataset classes, with the BPE tokenizer fixture
  (`tokenizers` + Jinja2 standing in for `transformers`: the template rendered with
  `trim_blocks`/`lstrip_blocks`, then encoded without special tokens), and every batch of
  `iterate_batches` over the processed examples.

Run from this folder: `python3 gen_tuner.py` (needs numpy, tokenizers and jinja2; mlx-lm is
imported with stand-ins for `transformers`, `huggingface_hub` and its `rich`-based `cli_ui`).
"""

import json
import pathlib
import sys
import types

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
MODELS = TESTS / "fixtures" / "models"
OUT = TESTS / "fixtures" / "tuner"
sys.path.insert(0, str(MODELS))

from common import mlx_lm_module  # noqa: E402


def install_stand_ins():
    """Modules that mlx-lm imports at import time but the tuner code used here never calls."""

    def placeholder(module_name):
        module = types.ModuleType(module_name)
        module.__path__ = []

        def attribute(name):
            if name.startswith("__"):
                raise AttributeError(name)

            class Missing:
                def __init__(self, *args, **kwargs):
                    raise ImportError(f"{module_name}.{name} is a stand-in (gen_tuner.py)")

                @classmethod
                def register(cls, *args, **kwargs):
                    return None

            Missing.__name__ = name
            return Missing

        module.__getattr__ = attribute
        return module

    for name in ("transformers", "transformers.tokenization_utils_base", "huggingface_hub"):
        sys.modules.setdefault(name, placeholder(name))
    mlx_lm_module("models")  # registers the package without its __init__
    cli = types.ModuleType("mlx_lm.cli_ui")
    cli.rprint = print
    cli.TrainUI = cli.make_console = cli.print_lora_run_header = placeholder("cli").Missing
    sys.modules["mlx_lm.cli_ui"] = cli


install_stand_ins()
tuner_utils = mlx_lm_module("tuner.utils")
trainer = mlx_lm_module("tuner.trainer")
datasets = mlx_lm_module("tuner.datasets")

PROMPT = [1, 5, 9, 3, 17, 42, 7, 11, 2, 30]
# A batch of two rows as iterate_batches makes them: zero-padded, with (offset, length) pairs.
BATCH = [[1, 5, 9, 3, 17, 42, 7, 11, 2, 30, 4, 8], [2, 6, 10, 14, 18, 22, 26, 0, 0, 0, 0, 0]]
LENGTHS = [[0, 12], [3, 7]]


def floats(a):
    return [round(float(x), 7) for x in a.astype(mx.float32).reshape(-1).tolist()]


def load_fixture(name):
    config = json.loads((MODELS / name / "config.json").read_text())
    module = mlx_lm_module(f"models.{config['model_type']}")
    model = module.Model(module.ModelArgs.from_dict(config))
    weights = mx.load(str(MODELS / name / "model.safetensors"))
    if hasattr(model, "sanitize"):
        weights = model.sanitize(weights)
    if (q := config.get("quantization")) is not None:
        nn.quantize(
            model,
            group_size=q["group_size"],
            bits=q["bits"],
            mode=q.get("mode", "affine"),
            # As mlx-lm's loader: packed layers only, with their per-layer overrides.
            class_predicate=lambda p, m: f"{p}.scales" in weights
            and (q[p] if isinstance(q.get(p), dict) else True),
        )
    model.load_weights(list(weights.items()))
    mx.eval(model.parameters())
    return model


def set_adapter_values(model, seed):
    """Every adapter parameter (sorted by path) drawn anew: normal * 0.2 (lora_a, lora_b), or the
    current magnitude times (1 + 0.1 * normal) (DoRA's m)."""
    params = sorted(tree_flatten(model.trainable_parameters()))
    new = []
    for i, (path, p) in enumerate(params):
        noise = mx.random.normal(p.shape, key=mx.random.key(seed * 1000 + i))
        value = p * (1 + 0.1 * noise) if path.endswith(".m") else 0.2 * noise
        new.append((path, value.astype(p.dtype)))
    model.update(tree_unflatten(new))
    mx.eval(model.parameters())


def adapted(name, fine_tune_type, num_layers, lora_parameters, seed, out_dir):
    model = load_fixture(name)
    model.freeze()
    tuner_utils.linear_to_lora_layers(
        model, num_layers, lora_parameters, use_dora=fine_tune_type == "dora"
    )
    set_adapter_values(model, seed)
    out = OUT / out_dir
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "fine_tune_type": fine_tune_type,
        "num_layers": num_layers,
        "lora_parameters": lora_parameters,
        "model": f"tests/fixtures/models/{name}",
    }
    (out / "adapter_config.json").write_text(json.dumps(dict(sorted(config.items())), indent=4))
    mx.save_safetensors(str(out / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    return model


def logits_of(model):
    model.eval()
    return floats(model(mx.array([PROMPT])))


def one_step(model, updated=False):
    model.train()
    batch, lengths = mx.array(BATCH), mx.array(LENGTHS)
    (loss, ntoks), grads = nn.value_and_grad(model, trainer.default_loss)(model, batch, lengths)
    opt = optim.AdamW(learning_rate=1e-2)
    opt.update(model, grads)
    mx.eval(model.parameters(), opt.state)
    out = {
        "loss": float(loss.item()),
        "ntoks": int(ntoks.item()),
        "grads": {k: floats(v) for k, v in sorted(tree_flatten(grads))},
    }
    if updated:
        out["updated"] = {k: floats(v) for k, v in sorted(tree_flatten(model.trainable_parameters()))}
    return out


def fused_logits(name, adapter_dir, dequantize):
    """mlx-lm's `fuse.py` on the saved adapters: every `fuse`-able module merged (re-quantized
    unless `dequantize`, which also runs `dequantize_model`), then the prompt's logits."""
    model = load_fixture(name)
    tuner_utils.load_adapters(model, str(OUT / adapter_dir))
    fused = [(n, m.fuse(dequantize=dequantize)) for n, m in model.named_modules() if hasattr(m, "fuse")]
    model.update_modules(tree_unflatten(fused))
    if dequantize:
        model = mlx_lm_module("utils").dequantize_model(model)
    return logits_of(model)


def adapter_goldens():
    lora = {"rank": 4, "scale": 10.0, "dropout": 0.0}
    cases = {}
    m = adapted("llama_f32", "lora", 1, lora, 1, "llama_lora_py")
    cases["llama_lora_py"] = {"model": "llama_f32", "logits": logits_of(m), "step": one_step(m, True)}
    keys = dict(lora, keys=["self_attn.q_proj", "mlp.switch_mlp.up_proj", "mlp.gate"])
    m = adapted("qwen3_moe_f32", "lora", 2, keys, 2, "qwen3_moe_lora_py")
    cases["qwen3_moe_lora_py"] = {"model": "qwen3_moe_f32", "logits": logits_of(m), "step": one_step(m)}
    m = adapted("qwen3_moe_f32", "lora", 1, lora, 5, "qwen3_moe_all_lora_py")
    cases["qwen3_moe_all_lora_py"] = {"model": "qwen3_moe_f32", "logits": logits_of(m), "step": one_step(m)}
    m = adapted("llama_f32", "dora", 2, {"rank": 2, "scale": 5.0, "dropout": 0.0}, 3, "llama_dora_py")
    cases["llama_dora_py"] = {"model": "llama_f32", "logits": logits_of(m), "step": one_step(m)}
    m = adapted("llama_q4", "lora", 2, lora, 4, "llama_q4_lora_py")
    cases["llama_q4_lora_py"] = {"model": "llama_q4", "logits": logits_of(m), "step": one_step(m)}
    m = adapted("qwen3_moe_q4", "lora", 1, lora, 6, "qwen3_moe_q4_lora_py")
    cases["qwen3_moe_q4_lora_py"] = {"model": "qwen3_moe_q4", "logits": logits_of(m), "step": one_step(m)}
    for case in cases.values():
        case["fused_logits"] = fused_logits(case["model"], next(k for k, v in cases.items() if v is case), False)
    cases["llama_q4_lora_py"]["fused_dequantized_logits"] = fused_logits("llama_q4", "llama_q4_lora_py", True)
    rust_dir = OUT / "llama_lora_rs"
    if rust_dir.exists():
        model = load_fixture("llama_f32")
        tuner_utils.load_adapters(model, str(rust_dir))
        cases["llama_lora_rs"] = {"model": "llama_f32", "logits": logits_of(model)}
    else:
        print(f"{rust_dir} is missing: run the Rust test `write_rust_adapter_fixture` first")
    return cases


class StandInTokenizer:
    """What mlx-lm's datasets call on a `transformers` tokenizer, from `tokenizer.json` and
    `tokenizer_config.json` (the chat template rendered as `transformers` renders it)."""

    def __init__(self, path):
        import jinja2
        import tokenizers

        self.inner = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        config = json.loads((path / "tokenizer_config.json").read_text())

        def content(v):
            return v["content"] if isinstance(v, dict) else v

        self.special = {k: content(config[k]) for k in ("bos_token", "eos_token") if k in config}
        self.eos_token_id = self.inner.token_to_id(self.special["eos_token"])
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message):
            raise jinja2.TemplateError(message)

        env.globals["raise_exception"] = raise_exception
        self.template = env.from_string(config["chat_template"])

    def encode(self, text):
        return self.inner.encode(text, add_special_tokens=True).ids

    def apply_chat_template(self, messages, tools=None, add_generation_prompt=False, return_dict=False):
        text = self.template.render(
            messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **self.special
        )
        return self.inner.encode(text, add_special_tokens=False).ids


DATA = {
    "text": [
        {"text": "The cat sat on the mat."},
        {"text": "Hello world"},
        {"text": "A somewhat longer line of text, with punctuation; and more words to make it long."},
        {"text": "Short."},
        {"text": "Numbers 1 2 3 and symbols # @ !"},
    ],
    "completions": [
        {"prompt": "What is two plus two?", "completion": "Four."},
        {"prompt": "Name a colour.", "completion": "Blue, like the sky on a clear day."},
        {"prompt": "Say hi", "completion": "Hi!"},
        {"prompt": "Count to five, please, slowly and clearly.", "completion": "One, two, three, four, five."},
    ],
    "chat": [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Why is the sea salty?"},
                {"role": "assistant", "content": "Rivers carry minerals into it."},
            ]
        },
        {"messages": [{"role": "user", "content": "Tell me a joke"}, {"role": "assistant", "content": "No."}]},
        {"messages": [{"role": "user", "content": "Ping"}, {"role": "assistant", "content": "Pong"}]},
    ],
}


def dataset_goldens():
    tokenizer = StandInTokenizer(TESTS / "fixtures" / "bpe")
    cases = {}
    for name, records in DATA.items():
        folder = OUT / f"data_{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        for mask in [False, True] if name != "text" else [False]:
            config = types.SimpleNamespace(mask_prompt=mask)
            ds = datasets.create_dataset(records, tokenizer, config)
            processed = [ds.process(ds[i]) for i in range(len(ds))]
            batches = []
            for max_len in (2048, 12):
                for batch, lengths in trainer.iterate_batches(processed, 2, max_len, seed=0):
                    batches.append(
                        {"max_seq_length": max_len, "tokens": batch.tolist(), "lengths": lengths.tolist()}
                    )
            cases[f"{name}_mask{int(mask)}"] = {
                "dir": f"data_{name}",
                "mask_prompt": mask,
                "examples": [[list(map(int, t)), int(o)] for t, o in processed],
                "batches": batches,
            }
    return cases


def fused_rs_goldens():
    """Model directories fused by the Rust side, loaded as mlx-lm's `load_model` does."""
    out = {}
    for name in ["qwen3_moe_q4_fused_rs"]:
        folder = OUT / name
        if not folder.exists():
            print(f"{folder} is missing: run the Rust test `write_rust_fused_fixture` first")
            continue
        config = json.loads((folder / "config.json").read_text())
        module = mlx_lm_module(f"models.{config['model_type']}")
        model = module.Model(module.ModelArgs.from_dict(config))
        weights = mx.load(str(folder / "model.safetensors"))
        q = config["quantization"]
        nn.quantize(
            model,
            group_size=q["group_size"],
            bits=q["bits"],
            mode=q.get("mode", "affine"),
            class_predicate=lambda p, m: f"{p}.scales" in weights
            and (q[p] if isinstance(q.get(p), dict) else True),
        )
        model.load_weights(list(weights.items()))  # strict
        out[name] = logits_of(model)
    return out


def main():
    goldens = {"adapters": adapter_goldens(), "datasets": dataset_goldens(), "prompt": PROMPT,
               "batch": BATCH, "lengths": LENGTHS, "fused_rs": fused_rs_goldens()}
    (HERE / "tuner.json").write_text(json.dumps(goldens) + "\n")
    print(f"wrote {HERE / 'tuner.json'}")


if __name__ == "__main__":
    main()
