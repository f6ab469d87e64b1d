"""Checksums of `examples/presets.py`'s random weights for tiny configs (MLX 0.32.2, mlx-lm
0.32.0), which `mlx_lm::presets::random_model` must reproduce in Rust. Writes presets.json.

    python3 mlx-lm/tests/golden/gen_presets.py
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent / "examples"))
import presets  # noqa: E402

import mlx.core as mx  # noqa: E402

TINY_LLAMA = {
    "model_type": "llama",
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "intermediate_size": 256,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "vocab_size": 128,
    "tie_word_embeddings": False,
    "quantization": {
        "group_size": 64,
        "bits": 4,
        "mode": "affine",
        "model.layers.1.mlp.down_proj": {"group_size": 64, "bits": 8},
        "lm_head": False,
    },
}

cases = []
for name, config, seed in [("tiny_llama_q4", TINY_LLAMA, 3)]:
    model = presets.random_model(config, seed)
    logits = model(mx.array([[1, 2, 3, 4]])).astype(mx.float32)
    cases.append(
        {
            "name": name,
            "config": config,
            "seed": seed,
            "checksum": f"{presets.checksum(model):016x}",
            "logits_sum": logits.sum().item(),
            "logits_first": [round(x, 5) for x in logits[0, -1, :8].tolist()],
        }
    )
(HERE / "presets.json").write_text(json.dumps(cases, indent=1) + "\n")
print(json.dumps(cases[0]["checksum"]))

# The structure of every preset as mlx-lm builds it (lazily: nothing is drawn): the number of
# parameters, their bytes, and a digest of the sorted (path, shape, dtype) list.
import hashlib  # noqa: E402

from mlx.utils import tree_flatten  # noqa: E402

structures = {}
for path in sorted(presets.PRESETS.glob("*.json")):
    model = presets.build_model(presets.config(path.stem))
    params = sorted(tree_flatten(model.parameters()))
    listing = "\n".join(f"{p} {list(a.shape)} {a.dtype}" for p, a in params)
    structures[path.stem] = {
        "parameters": len(params),
        "bytes": sum(a.nbytes for _, a in params),
        "digest": hashlib.sha256(listing.encode()).hexdigest()[:16],
    }
(HERE / "preset_structures.json").write_text(json.dumps(structures, indent=1) + "\n")
print(json.dumps(structures))
