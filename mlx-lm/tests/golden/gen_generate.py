"""mlx-lm 0.32.0's own generation loops on the llama fixtures, with logits processors
(repetition and presence penalties): `generate_step` and `speculative_generate_step` (whose
processors see a different history than the plain loop's: mlx-lm's, kept as it is). Writes
generate.json. Needs mlx 0.32.2 and mlx-lm 0.32.0 (imported with the stand-ins of
examples/python_generate.py).

    python3 mlx-lm/tests/golden/gen_generate.py
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent / "examples"))
import presets  # noqa: E402
import python_generate  # noqa: E402

python_generate.install_stand_ins()
import mlx.core as mx  # noqa: E402

generate = presets.mlx_lm_module("generate")
sample_utils = presets.mlx_lm_module("sample_utils")
utils = presets.mlx_lm_module("utils")
FIXTURES = HERE.parent / "fixtures" / "models"
PENALTIES = dict(repetition_penalty=1.5, repetition_context_size=6, presence_penalty=0.5,
                 presence_context_size=20)


def processors():
    return sample_utils.make_logits_processors(**PENALTIES)


main, _ = utils.load_model(FIXTURES / "llama_f32")
draft, _ = utils.load_model(FIXTURES / "llama_q4")
prompt = mx.array(json.loads((FIXTURES / "llama_f32" / "expected.json").read_text())["prompt"])
out = {"penalties": PENALTIES, "prefill_step_size": 4, "num_draft_tokens": 3, "max_tokens": 20}
out["plain"] = [int(t) for t, _ in generate.generate_step(
    prompt, main, max_tokens=20, logits_processors=processors(), prefill_step_size=4)]
for name, d in [("speculative_self", main), ("speculative_q4", draft)]:
    out[name] = [int(t) for t, _, _ in generate.speculative_generate_step(
        prompt, main, d, num_draft_tokens=3, max_tokens=20, logits_processors=processors(),
        prefill_step_size=4)]
(HERE / "generate.json").write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(out))
