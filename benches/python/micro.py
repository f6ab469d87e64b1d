"""Python twin of the Rust microbenchmark workloads (benches/src/workloads.rs).

Every case is rebuilt from the JSON spec that the Rust side writes (`Spec::to_json`: op, shapes,
dtype, seed, scales, kernel source), so both sides run identical workloads: input j of a case is
``mx.random.normal(shape, key=mx.random.key(seed + j)) * scale`` cast to the case's dtype.
One iteration builds the graph and evaluates it (``mx.eval``) inside the clock, except the
``chain`` case with ``eval: false``, which times the graph build alone.

Modes:

  python3 micro.py --serve
      The `compare` runner's child: prints an info line, then answers one JSON line per request
      read on stdin:
        {"cmd":"setup","spec":{...}}   -> {"kind":"ready","name":..,"checksum":..[,"note":..]}
        {"cmd":"warmup","iters":N}     -> {"kind":"warm","name":..}
        {"cmd":"sample","iters":N}     -> {"kind":"sample","name":..,"iters":N,"ns_per_iter":..}
        {"cmd":"quit"}
      A failure answers {"kind":"error","message":..} and the child goes on.

  python3 micro.py --spec JSON [--warmup W] [--samples S] [--iters N]
      Standalone: one case (a line of `compare --print-specs`), printing the info line and one
      JSON sample line per sample.

  python3 micro.py --info
      The info line alone.

Exit status 3: mlx is not importable.
"""

import argparse
import importlib
import importlib.util
import json
import sys
import time
import types

try:
    import mlx.core as mx
    import mlx.nn as nn
except ImportError as e:  # reported to the runner
    print(f"micro.py: cannot import mlx: {e}", file=sys.stderr)
    sys.exit(3)


def lora_linear_class():
    """mlx-lm's LoRALinear, imported without running the `__init__.py` of `mlx_lm` and
    `mlx_lm.tuner` (they pull in transformers and the trainer's dependencies)."""
    if "mlx_lm" not in sys.modules:
        found = importlib.util.find_spec("mlx_lm")
        if found is None or not found.submodule_search_locations:
            raise RuntimeError("mlx-lm is not installed (pip install mlx-lm==0.32.0)")
        root = list(found.submodule_search_locations)[0]
        for name, path in (("mlx_lm", root), ("mlx_lm.tuner", f"{root}/tuner")):
            package = types.ModuleType(name)
            package.__path__ = [path]
            sys.modules[name] = package
    return importlib.import_module("mlx_lm.tuner.lora").LoRALinear


DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


def loaded_libmlx():
    """The libmlx files this process has mapped (Linux), to show both sides load the same one."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({ln.split()[-1] for ln in maps if "libmlx" in ln and "/" in ln})
    except OSError:
        return None


def info_line():
    return {
        "kind": "info",
        "lang": "python",
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "python": sys.version.split()[0],
        "mlx_file": getattr(mx, "__file__", None),
        "libmlx": loaded_libmlx(),
    }


class Case:
    """One prepared workload: `step()` builds the graph and returns the outputs (unevaluated)."""

    def __init__(self, spec):
        self.name = spec["name"]
        self.seed = int(spec["seed"])
        self.dtype = DTYPES[spec["dtype"]]
        p = spec["params"]
        self.evaluates = True
        self.note = None
        op = p["op"]
        builder = getattr(self, "build_" + op, None)
        if builder is None:
            raise ValueError(f"unknown op {op!r}")
        self.step = builder(p)

    def input(self, j, shape, scale=1.0, dtype=None):
        x = mx.random.normal(shape, key=mx.random.key(self.seed + j))
        if scale != 1.0:
            x = x * scale
        x = x.astype(self.dtype if dtype is None else dtype)
        mx.eval(x)
        return x

    def build_matmul(self, p):
        a = self.input(0, [p["m"], p["k"]])
        b = self.input(1, [p["k"], p["n"]], p["b_scale"])
        return lambda: [a @ b]

    def build_softmax(self, p):
        x = self.input(0, [p["rows"], p["cols"]])
        return lambda: [mx.softmax(x, axis=-1)]

    def build_layer_norm(self, p):
        x = self.input(0, [p["rows"], p["dim"]])
        w = self.input(1, [p["dim"]])
        b = self.input(2, [p["dim"]])
        eps = p["eps"]
        return lambda: [mx.fast.layer_norm(x, w, b, eps)]

    def build_rms_norm(self, p):
        x = self.input(0, [p["rows"], p["dim"]])
        w = self.input(1, [p["dim"]])
        eps = p["eps"]
        return lambda: [mx.fast.rms_norm(x, w, eps)]

    def build_swiglu(self, p):
        shape = [p["rows"], p["hidden"]]
        g = self.input(0, shape)
        u = self.input(1, shape)

        def ops(g, u):
            return (g * mx.sigmoid(g)) * u

        variant = p["variant"]
        if variant == "ops":
            return lambda: [ops(g, u)]
        if variant == "compiled":
            f = mx.compile(ops)
            return lambda: [f(g, u)]
        if variant != "kernel":
            raise ValueError(f"unknown swiglu variant {variant!r}")
        backend = p.get("kernel_backend")
        make = {"cuda": getattr(mx.fast, "cuda_kernel", None),
                "metal": getattr(mx.fast, "metal_kernel", None)}.get(backend)
        if make is None:
            raise RuntimeError(f"no custom-kernel backend {backend!r} in this mlx")
        kernel = make(name="bench_swiglu", input_names=["gate", "up"], output_names=["out"],
                      source=p["kernel_source"])
        size = g.size
        threads = p["threads"]
        if size % threads:
            raise ValueError(f"{size} elements are not a multiple of {threads}")
        return lambda: kernel(inputs=[g, u], template=[("T", g.dtype)], grid=(size, 1, 1),
                              threadgroup=(threads, 1, 1), output_shapes=[g.shape],
                              output_dtypes=[g.dtype])

    def build_sdpa(self, p):
        hq, hkv, n, d = p["q_heads"], p["kv_heads"], p["len"], p["head_dim"]
        q = self.input(0, [1, hq, n, d])
        k = self.input(1, [1, hkv, n, d])
        v = self.input(2, [1, hkv, n, d])
        scale = p["scale"]
        mask = p["mask"]
        return lambda: [mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)]

    def build_qmm(self, p):
        x = self.input(0, [p["m"], p["k"]])
        w = self.input(1, [p["n"], p["k"]], p["w_scale"])
        gs, bits = p["group_size"], p["bits"]
        wq, scales, biases = mx.quantize(w, group_size=gs, bits=bits)
        mx.eval(wq, scales, biases)
        return lambda: [mx.quantized_matmul(x, wq, scales, biases, transpose=True,
                                            group_size=gs, bits=bits)]

    def build_gather_qmm(self, p):
        t, e, top_k, k, n = p["tokens"], p["experts"], p["top_k"], p["k"], p["n"]
        x = self.input(0, [t, 1, 1, k])
        w = self.input(1, [e, n, k], p["w_scale"])
        logits = self.input(2, [t, e], dtype=mx.float32)
        gs, bits = p["group_size"], p["bits"]
        wq, scales, biases = mx.quantize(w, group_size=gs, bits=bits)
        idx = mx.argpartition(logits, kth=-top_k, axis=-1)[..., -top_k:]
        mx.eval(wq, scales, biases, idx)
        return lambda: [mx.gather_qmm(x, wq, scales, biases, rhs_indices=idx, transpose=True,
                                      group_size=gs, bits=bits, sorted_indices=False)]

    def build_lora(self, p):
        size, rank, tokens = p["size"], p["rank"], p["tokens"]
        x = self.input(0, [tokens, size])
        w = self.input(1, [size, size], p["w_scale"])
        a = self.input(2, [size, rank], p["a_scale"], mx.float32)
        b = self.input(3, [rank, size], p["b_scale"], mx.float32)
        scale = p["lora_scale"]
        try:
            cls = lora_linear_class()
        except (ImportError, RuntimeError) as e:
            # mlx-lm's LoRALinear.__call__ (no dropout), written out.
            self.note = f"mlx-lm's LoRALinear unavailable ({e}); its forward written out"
            wt = w.T
            return lambda: [x @ wt + (scale * ((x @ a) @ b)).astype(x.dtype)]
        base = nn.Linear(size, size, bias=False)
        base.weight = w
        lora = cls.from_base(base, r=rank, dropout=0.0, scale=scale)
        lora.lora_a = a
        lora.lora_b = b
        self.note = "mlx_lm.tuner.lora.LoRALinear"
        return lambda: [lora(x)]

    def build_chain(self, p):
        n = p["n"]
        self.evaluates = bool(p["eval"])
        y0 = mx.array(0.0)
        mx.eval(y0)

        def chain():
            y = y0
            for _ in range(n):
                y = y + 1.0
            return [y]

        return chain

    def time(self, iters):
        """Nanoseconds per iteration (see the module docs)."""
        iters = max(1, int(iters))
        step = self.step
        if self.evaluates:
            t0 = time.perf_counter_ns()
            for _ in range(iters):
                out = step()
                mx.eval(out)
            t1 = time.perf_counter_ns()
            del out
        else:
            kept = []
            t0 = time.perf_counter_ns()
            for _ in range(iters):
                kept.append(step())
            t1 = time.perf_counter_ns()
            del kept
        return (t1 - t0) / iters

    def checksum(self):
        total = 0.0
        for o in self.step():
            total += mx.sum(o.astype(mx.float32)).item()
        return total


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def serve():
    emit(info_line())
    case = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "quit":
                return
            if cmd == "setup":
                case = None
                mx.clear_cache()
                case = Case(req["spec"])
                ready = {"kind": "ready", "name": case.name, "checksum": case.checksum()}
                if case.note:
                    ready["note"] = case.note
                emit(ready)
            elif cmd in ("warmup", "sample"):
                if case is None:
                    raise RuntimeError(f"{cmd} before a successful setup")
                ns = case.time(req["iters"])
                if cmd == "warmup":
                    emit({"kind": "warm", "name": case.name})
                else:
                    emit({"kind": "sample", "name": case.name, "iters": int(req["iters"]),
                          "ns_per_iter": ns})
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as e:  # answered, so the runner can say which case failed
            emit({"kind": "error", "message": f"{type(e).__name__}: {e}"})


def positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"wants an integer >= 1, got {text!r}")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--info", action="store_true")
    ap.add_argument("--spec", help="one case's JSON (a line of `compare --print-specs`)")
    ap.add_argument("--warmup", type=positive, default=3)
    ap.add_argument("--samples", type=positive, default=10)
    ap.add_argument("--iters", type=positive, default=1)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    emit(info_line())
    if args.info:
        return
    if not args.spec:
        ap.error("give --serve, --info or --spec JSON")
    case = Case(json.loads(args.spec))
    emit({"kind": "ready", "name": case.name, "checksum": case.checksum()})
    case.time(args.warmup)
    for i in range(args.samples):
        emit({"kind": "sample", "name": case.name, "sample": i, "iters": args.iters,
              "ns_per_iter": case.time(args.iters)})


if __name__ == "__main__":
    main()
