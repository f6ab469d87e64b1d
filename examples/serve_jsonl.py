"""`--serve` for the Python model twins (python_single_seqlen.py, python_generate.py,
python_lora.py): the JSON-lines protocol of the benches' `compare` runner, as the Rust examples
speak it (`mlx_examples::serve`) and as `benches/python/micro.py --serve` does.

The program loads its model once, prints one info line, then answers one JSON line per request
read on stdin:

    (start)                        -> {"kind":"info","lang":"python","mlx_version":..,"device":..}
    {"cmd":"setup","spec":{...}}   -> {"kind":"ready",...}  (the workload's check values)
    {"cmd":"warmup","iters":N}     -> {"kind":"warm"}
    {"cmd":"sample","iters":N}     -> {"kind":"sample","iters":N,"ns_per_iter":..}
    {"cmd":"quit"}                 (or the end of stdin)

A failure answers {"kind":"error","message":..} and the program goes on. While serving, anything
the workload prints goes to stderr, so stdout carries the protocol alone.
"""

import json
import sys

import mlx.core as mx


def loaded_libmlx():
    """The libmlx files this process has mapped (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({ln.split()[-1] for ln in maps if "libmlx" in ln and "/" in ln})
    except OSError:
        return None


def info_line(program, **extra):
    line = {
        "kind": "info",
        "lang": "python",
        "program": program,
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "python": sys.version.split()[0],
        "libmlx": loaded_libmlx(),
    }
    line.update(extra)
    return line


def _iters(req):
    n = req.get("iters")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`iters` must be an integer >= 1 in {json.dumps(req)}")
    return n


def answer(workload, req, state):
    """The answer to one request (a dict); None for quit. `workload` has `setup(spec) -> dict`
    and `run(iters) -> ns per iteration`; `state["ready"]` says whether a setup succeeded."""
    cmd = req.get("cmd")
    if cmd == "quit":
        return None
    try:
        if cmd == "setup":
            state["ready"] = False
            fields = dict(workload.setup(req.get("spec") or {}))
            state["ready"] = True
            fields["kind"] = "ready"
            return fields
        if cmd in ("warmup", "sample"):
            if not state.get("ready"):
                raise RuntimeError(f"{cmd} before a successful setup")
            n = _iters(req)
            ns = workload.run(n)
            if cmd == "warmup":
                return {"kind": "warm"}
            return {"kind": "sample", "iters": n, "ns_per_iter": ns}
        raise ValueError(f"unknown command {cmd!r}")
    except (Exception, SystemExit) as e:  # answered: the runner says which case failed
        message = str(e) if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}"
        return {"kind": "error", "message": message}


def serve(info, workload):
    """Prints `info`, then answers the requests on stdin until quit or the end of stdin."""
    out = sys.stdout
    sys.stdout = sys.stderr

    def emit(obj):
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        out.flush()

    emit(info)
    state = {"ready": False}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as e:
            emit({"kind": "error", "message": f"the request is not JSON ({e}): {line}"})
            continue
        reply = answer(workload, req, state)
        if reply is None:
            return
        emit(reply)
