#!/usr/bin/env bash
# Rust against Python mlx-lm 0.32.0 on the random-weight presets, side by side on one machine:
# the GLM-4.5-MoE forward pass (`single_seqlen`) at several sequence lengths, then decoding
# (`generate`, 64-token prompt, greedy) for every preset. Each pair prints its weights checksum
# (the same weights on both sides) and the generated token ids (compared here).
#
#   examples/scripts/compare_models.sh OUT_DIR [PRESET ...]
#
# SKIP_SEQLEN=1 or SKIP_GENERATE=1 leave out one half; LENGTHS and MAX_TOKENS change the sizes.
# Needs the release `single_seqlen` and `generate` examples on PATH (or in target/release/examples)
# and Python with mlx 0.32.2 and mlx-lm 0.32.0.
set -uo pipefail
out=${1:?usage: compare_models.sh OUT_DIR [PRESET ...]}
shift
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(mistral-7b-4bit qwen3-30b-a3b-4bit mixtral-8x7b-4bit glm45-air-3bit)
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$here/../target/release/examples:$PATH"
mkdir -p "$out"
work=$(mktemp -d)  # logits files: large, not kept
trap 'rm -rf "$work"' EXIT
tokens=$(seq -s, 1000 1063)
max_tokens=${MAX_TOKENS:-100}
lengths=${LENGTHS:-32 64 127 128 256 512}

if [ -z "${SKIP_SEQLEN:-}" ]; then
  echo "== single_seqlen --preset glm45-air: $lengths"
  # shellcheck disable=SC2086
  single_seqlen --preset glm45-air --save-output "$work/seqlen.npy" $lengths 2>&1 | tee "$out/seqlen-rust.txt"
  # shellcheck disable=SC2086
  python3 "$here/python_single_seqlen.py" --preset glm45-air --compare-output "$work/seqlen.npy" $lengths 2>&1 | tee "$out/seqlen-python.txt"
fi
[ -n "${SKIP_GENERATE:-}" ] && exit 0

for p in "${presets[@]}"; do
  echo "== generate --preset $p ($max_tokens tokens)"
  generate --preset "$p" --prompt-tokens "$tokens" --max-tokens "$max_tokens" 2>&1 | tee "$out/generate-$p-rust.txt"
  python3 "$here/python_generate.py" --preset "$p" --prompt-tokens "$tokens" --max-tokens "$max_tokens" 2>&1 | tee "$out/generate-$p-python.txt"
  r=$(grep '^tokens:' "$out/generate-$p-rust.txt"); py=$(grep '^tokens:' "$out/generate-$p-python.txt")
  rc=$(grep '^weights checksum' "$out/generate-$p-rust.txt"); pc=$(grep '^weights checksum' "$out/generate-$p-python.txt")
  { [ "$rc" = "$pc" ] && echo "$p: same weights ($rc)" || echo "$p: WEIGHTS DIFFER: rust $rc, python $pc"
    [ "$r" = "$py" ] && echo "$p: same tokens" || echo "$p: TOKENS DIFFER"; } | tee -a "$out/summary.txt"
done
