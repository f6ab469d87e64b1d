"""The Python twin of `examples/lora.rs` on a random-weight preset: mlx-lm 0.32.0's own LoRA
(`tuner.utils.linear_to_lora_layers`) and training loop (`tuner.trainer.train`: the compiled
step, AdamW with warm-up + cosine decay) on the very same weights (`examples/presets.py`) and
the same byte-level data (`[256] + bytes + [257]` per `text` record, as `lora.rs` reads it).

    python3 examples/python_lora.py --preset mistral-7b-4bit --data DIR \\
        --batch-size 4 --max-seq-length 512 --iters 50

Prints mlx-lm's report lines (`Iter N: Train loss …, It/sec …, Tokens/sec …`). mlx-lm is
imported without transformers, huggingface_hub or rich (stand-ins, as python_generate.py does);
without numpy, batches come from a copy of mlx-lm's `iterate_batches` that needs none.
"""

import argparse
import json
import pathlib
import random
import sys
import types

import mlx.core as mx
import mlx.optimizers as optim

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import presets  # noqa: E402
import python_generate  # noqa: E402  (its stand-ins for transformers and huggingface_hub)

BOS, EOS = 256, 257


class _QuietUI:
    """Stands in for mlx-lm's rich-based `TrainUI`: the report comes from the callback."""

    def __init__(self, *_args, **_kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False

    def advance(self):
        pass

    def report_train(self, *_args):
        pass

    def report_val(self, it, val_loss, val_time):
        print(f"Iter {it}: Val loss {val_loss:.3f}, Val took {val_time:.3f}s", flush=True)

    def report_save(self, *_args):
        pass

    def val_task(self, _total):
        class _Task:
            def __enter__(self):
                return lambda: None

            def __exit__(self, *_exc):
                return False

        return _Task()


def install_stand_ins():
    python_generate.install_stand_ins()
    cli = types.ModuleType("mlx_lm.cli_ui")
    cli.rprint = print
    cli.TrainUI = _QuietUI
    sys.modules["mlx_lm.cli_ui"] = cli
    try:
        import numpy  # noqa: F401
    except ImportError:
        sys.modules["numpy"] = types.ModuleType("numpy")  # only imported; batches below


def byte_dataset(path):
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            text = json.loads(line).get("text")
            if not isinstance(text, str):
                raise SystemExit(f"{path}:{n}: a record needs a `text` string")
            records.append([BOS, *text.encode(), EOS])
    return records


def iterate_batches(dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
    """mlx-lm 0.32.0's `iterate_batches` (single process) without numpy: sorted by length,
    batches of `batch_size` in a shuffled order, padded to one plus a multiple of 32."""
    idx = sorted(range(len(dataset)), key=lambda i: len(dataset[i]))
    if len(dataset) < batch_size:
        raise ValueError(f"Dataset must have at least batch_size={batch_size} examples")
    batch_idx = [idx[i : i + batch_size] for i in range(0, len(idx) - batch_size + 1, batch_size)]
    rng = random.Random(seed)
    while True:
        order = list(range(len(batch_idx)))
        rng.shuffle(order)
        for i in order:
            batch = [dataset[j] for j in batch_idx[i]]
            lengths = [min(len(x), max_seq_length) for x in batch]
            width = min(1 + 32 * ((max(len(x) for x in batch) + 31) // 32), max_seq_length)
            rows = [x[:n] + [0] * (width - n) for x, n in zip(batch, lengths)]
            yield mx.array(rows, dtype=mx.int32), mx.array([[0, n] for n in lengths])
        if not loop:
            break


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True)
    p.add_argument("--data", type=pathlib.Path, default=HERE / "data" / "lora")
    p.add_argument("--num-layers", type=int, default=16)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--scale", type=float, default=20.0)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-seq-length", type=int, default=2048)
    p.add_argument("--steps-per-report", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    o = p.parse_args()

    install_stand_ins()
    trainer = presets.mlx_lm_module("tuner.trainer")
    tuner_utils = presets.mlx_lm_module("tuner.utils")
    mx.random.seed(o.seed)
    print("Loading pretrained model")
    config = presets.config(o.preset)
    model = presets.random_model(config, seed=o.seed)
    print(f"weights checksum: {presets.checksum(model):016x}")
    print("Loading datasets")
    train_set = byte_dataset(o.data / "train.jsonl")
    valid_path = o.data / "valid.jsonl"
    valid_set = byte_dataset(valid_path) if valid_path.exists() else None
    print("Training")
    model.freeze()
    layers = min(o.num_layers, len(model.layers))
    lora = {"rank": o.rank, "scale": o.scale, "dropout": 0.0}
    tuner_utils.linear_to_lora_layers(model, layers, lora)
    schedule = tuner_utils.build_schedule(
        {"name": "cosine_decay", "arguments": [o.learning_rate, max(o.iters - o.warmup, 1)],
         "warmup": o.warmup, "warmup_init": 0.0}
    )
    optimizer = optim.AdamW(learning_rate=schedule)

    class Report(trainer.TrainingCallback):
        def on_train_loss_report(self, info):
            print(f"Iter {info['iteration']}: Train loss {info['train_loss']:.3f}, "
                  f"Learning Rate {info['learning_rate']:.3e}, "
                  f"It/sec {info['iterations_per_second']:.3f}, "
                  f"Tokens/sec {info['tokens_per_second']:.3f}, "
                  f"Trained Tokens {info['trained_tokens']}, "
                  f"Peak mem {info['peak_memory']:.3f} GB", flush=True)

    args = trainer.TrainingArgs(
        batch_size=o.batch_size, iters=o.iters, steps_per_report=o.steps_per_report,
        steps_per_eval=max(o.iters, 1) * 10, steps_per_save=max(o.iters, 1) * 10,
        max_seq_length=o.max_seq_length, adapter_file="/tmp/python_lora_adapters.safetensors",
    )
    trainer.train(model, optimizer, train_set, valid_set, args,
                  iterate_batches=iterate_batches, training_callback=Report())


if __name__ == "__main__":
    main()
