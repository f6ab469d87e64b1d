"""The Python twin of `examples/lora.rs` on a random-weight preset: mlx-lm 0.32.0's own LoRA
(`tuner.utils.linear_to_lora_layers`) and training loop (`tuner.trainer.train`: the compiled
step, AdamW with warm-up + cosine decay) on the very same weights (`examples/presets.py`) and
the same byte-level data (`[256] + bytes + [257]` per `text` record, as `lora.rs` reads it).

    python3 examples/python_lora.py --preset mistral-7b-4bit --data DIR \\
        --batch-size 4 --max-seq-length 512 --iters 50

`--preset small` is `lora.rs`'s default model (`examples/lora-llama-small.json`, drawn in
bfloat16 and cast to float32, as `lora.rs` does). `--serve` answers the benches' `compare`
runner instead (JSON lines, `serve_jsonl.py`; see `ServedTraining`).

Prints mlx-lm's report lines (`Iter N: Train loss …, It/sec …, Tokens/sec …`). mlx-lm is
imported without transformers, huggingface_hub or rich (stand-ins, as python_generate.py does);
without numpy, batches come from a copy of mlx-lm's `iterate_batches` that needs none.
"""

import argparse
import json
import pathlib
import random
import sys
import tempfile
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
    p.add_argument("--preset", required=True, help="a preset name, or small")
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
    p.add_argument("--serve", action="store_true", help="answer the benches' compare runner")
    o = p.parse_args()

    install_stand_ins()
    trainer = presets.mlx_lm_module("tuner.trainer")
    tuner_utils = presets.mlx_lm_module("tuner.utils")
    mx.random.seed(o.seed)
    print("Loading pretrained model")
    small = o.preset == "small"
    config = presets.config(str(HERE / "lora-llama-small.json") if small else o.preset)
    model = presets.random_model(config, seed=o.seed)
    if small:
        model.set_dtype(mx.float32)
    weights_checksum = f"{presets.checksum(model):016x}"
    print(f"weights checksum: {weights_checksum}", file=sys.stderr if o.serve else sys.stdout)
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
    if o.serve:
        return serve(o, trainer, model, optimizer, train_set, weights_checksum)

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


class ServedTraining:
    """The training steps `--serve` times, as `lora.rs --serve`: a setup (`{"batch_size": B,
    "max_seq_length": S}`) makes the batch of the first B records (mlx-lm's padding) and
    answers its loss before any update (`checksum`); an iteration is one step of mlx-lm's own
    `train` on that batch. Each sample calls `train` for 1 + N iterations, reporting every
    iteration, and takes the time of the last N from its reports (the first is the compile of
    the step that every `train` call makes afresh)."""

    def __init__(self, o, trainer, model, optimizer, records):
        self.o, self.trainer, self.model, self.optimizer = o, trainer, model, optimizer
        self.records = records
        self.batch = None
        self.adapter_dir = tempfile.TemporaryDirectory(prefix="python_lora_serve")

    def setup(self, spec):
        self.batch = None
        for key in ("batch_size", "max_seq_length"):
            if not isinstance(spec.get(key), int) or spec[key] < 1:
                raise ValueError(f"no `{key}` in {spec}")
        size, max_len = spec["batch_size"], spec["max_seq_length"]
        if size > len(self.records):
            raise ValueError(f"batch_size {size} > {len(self.records)} records")
        batch = next(iterate_batches(self.records[:size], size, max_len))
        self.model.train()
        loss, ntoks = self.trainer.default_loss(self.model, *batch)
        self.batch = batch
        return {"checksum": loss.item(), "ntoks": ntoks.item(), "shape": list(batch[0].shape)}

    def run(self, iters):
        batch = self.batch
        times = []

        class Collect(self.trainer.TrainingCallback):
            def on_train_loss_report(self, info):
                times.append(1.0 / info["iterations_per_second"])

        def fixed(**_kwargs):
            while True:
                yield batch

        args = self.trainer.TrainingArgs(
            batch_size=self.o.batch_size, iters=iters + 1, steps_per_report=1,
            steps_per_eval=10 * (iters + 1), steps_per_save=10 * (iters + 1),
            max_seq_length=self.o.max_seq_length,
            adapter_file=f"{self.adapter_dir.name}/adapters.safetensors",
        )
        self.trainer.train(self.model, self.optimizer, self.records, None, args,
                           iterate_batches=fixed, training_callback=Collect())
        if len(times) != iters + 1:
            raise RuntimeError(f"mlx-lm's train reported {len(times)} of {iters + 1} steps")
        return sum(times[1:]) / iters * 1e9


def serve(o, trainer, model, optimizer, records, weights_checksum):
    import serve_jsonl

    info = serve_jsonl.info_line("python_lora", preset=o.preset, weights_checksum=weights_checksum)
    serve_jsonl.serve(info, ServedTraining(o, trainer, model, optimizer, records))


if __name__ == "__main__":
    main()
