"""Python twin of chain.c: a chain of N scalar adds on the default stream.

  fresh  ``y = y + 1.0``: the operator makes a new scalar array per add
  reuse  ``y = mx.add(y, one)``: one scalar array made once

For every repetition it times the graph build alone and build + eval of the last array, and
prints one JSON line, in the same format as chain.c. The graph is freed after the clock stops.

usage: python3 chain.py [--n N] [--warmup W] [--reps R] [--variant reuse|fresh|both] [--info]
"""

import argparse
import json
import sys
import time

try:
    import mlx.core as mx
except ImportError as e:  # pragma: no cover - reported to the runner
    print(f"chain.py: cannot import mlx.core: {e}", file=sys.stderr)
    sys.exit(3)


def positive(minimum):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants an integer >= {minimum}, got '{text}'")
        if v < minimum:
            raise argparse.ArgumentTypeError(f"wants an integer >= {minimum}, got '{text}'")
        return v

    return parse


def run_chain(variant, n, one):
    y = mx.array(0.0)
    mx.eval(y)
    if variant == "reuse":
        t0 = time.perf_counter_ns()
        for _ in range(n):
            y = mx.add(y, one)
        t1 = time.perf_counter_ns()
    else:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            y = y + 1.0
        t1 = time.perf_counter_ns()
    mx.eval(y)
    t2 = time.perf_counter_ns()
    value = y.item()
    if value != float(n):
        print(f"chain.py: wrong result {value}, expected {n}", file=sys.stderr)
        sys.exit(1)
    del y
    return t1 - t0, t2 - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=positive(1), default=1000)
    p.add_argument("--warmup", type=positive(0), default=5)
    p.add_argument("--reps", type=positive(1), default=20)
    p.add_argument("--variant", choices=["reuse", "fresh", "both"], default="both")
    p.add_argument("--info", action="store_true", help="print the info line only")
    args = p.parse_args()
    if args.n > 1 << 24:
        p.error("--n must be at most 2^24 (the float32 result must be exact)")

    info = {
        "kind": "info",
        "lang": "python",
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "n": args.n,
        "python": sys.version.split()[0],
    }
    print(json.dumps(info), flush=True)
    if args.info:
        return
    variants = ["reuse", "fresh"] if args.variant == "both" else [args.variant]
    one = mx.array(1.0)
    mx.eval(one)
    for _ in range(args.warmup):
        for v in variants:
            run_chain(v, args.n, one)
    for rep in range(args.reps):
        for v in variants:
            build, total = run_chain(v, args.n, one)
            sample = {
                "kind": "sample",
                "lang": "python",
                "variant": v,
                "rep": rep,
                "n": args.n,
                "build_ns": build,
                "build_eval_ns": total,
            }
            print(json.dumps(sample, separators=(",", ":")))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
