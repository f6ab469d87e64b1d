#!/usr/bin/env bash
# The GPU checks of the crate's own kernels (`mlx_rs::kernels`, issue 16), in one go, writing each
# log under OUT_DIR:
#
#   examples/scripts/verify_kernels.sh OUT_DIR
#
# 1. the kernel tests against MLX's ops (grouped expert matmul, fused activations and dropout,
#    MoE routers and gather-add);
# 2. Qwen3-30B-A3B's `single_seqlen` logits with `--fused off` twice (is MLX deterministic
#    here?) and with `--fused on`, at 1, 4 and 48 layers: where do the modes part;
# 3. `moe_paths` and `fused_paths` (the tables `CUDA_CROSSOVERS` transcribe) and the criterion
#    bench `kernels`.
#
# Needs on PATH: `kernels-test`, `fused-test`, `routing-test` (the test binaries of
# mlx-rs/tests/{kernels,fused_kernels,moe_routing_kernels}.rs), `kernels-bench` (the bench
# binary of benches/benches/kernels.rs), `single_seqlen`, `moe_paths`, `fused_paths`; and python3
# (for the layer-count configs). Run from the repository root. SKIP_TESTS=1, SKIP_QWEN=1 or
# SKIP_BENCH=1 leave out a part.
set -uo pipefail
out=${1:?usage: verify_kernels.sh OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
step() { echo "[$(( $(date +%s) - start )) s] $*"; }

if [ -z "${SKIP_TESTS:-}" ]; then
  for t in kernels-test fused-test routing-test; do
    step "$t"
    "$t" --test-threads 1 --nocapture > "$out/$t.txt" 2>&1
    echo "exit $?" >> "$out/$t.txt"
    tail -3 "$out/$t.txt"
  done
fi

if [ -z "${SKIP_QWEN:-}" ]; then
  for layers in 1 4 48; do
    config="$work/qwen3-$layers.json"
    python3 - "$config" "$layers" <<'PY'
import json, sys
c = json.load(open("mlx-lm/presets/qwen3-30b-a3b-4bit.json"))
c["num_hidden_layers"] = int(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"))
PY
    log="$out/qwen3-$layers-layers.txt"
    step "qwen3, $layers layers"
    run() { single_seqlen 512 --preset "$config" --runs 1 --warmup 0 "$@" 2>&1 | grep -E "difference|agree|ms"; }
    { echo "== off (reference)"; run --fused off --save-output "$work/off.npy"
      echo "== off again"; run --fused off --compare-output "$work/off.npy" --tolerance 1
      echo "== on"; run --fused on --compare-output "$work/off.npy" --tolerance 1; } > "$log"
    cat "$log"
  done
fi

if [ -z "${SKIP_BENCH:-}" ]; then
  step "moe_paths"
  moe_paths --tokens 1,8,32,128,512,2048 --bits-sweep --budget-ms 60 --out "$out" > "$out/moe_paths.txt" 2>&1
  step "fused_paths"
  fused_paths --tokens 1,8,32,128,512,2048 --budget-ms 60 --out "$out" > "$out/fused_paths.txt" 2>&1
  step "criterion kernels"
  MLX_BENCH_PROFILE=gpu kernels-bench --bench --warm-up-time 0.3 --measurement-time 1 \
    --sample-size 10 > "$out/criterion-kernels.txt" 2>&1
fi
step done
