//! `--serve`: the JSON-lines protocol that the `compare` runner of `benches/` speaks with the
//! model examples (`single_seqlen`, `generate`, `lora`) and their Python twins
//! (`examples/serve_jsonl.py`), the same protocol as `benches/python/micro.py --serve`.
//!
//! The program loads its model once, prints one info line, then answers one JSON line per
//! request read on stdin:
//!
//! ```text
//! (start)                          -> {"kind":"info","lang":"rust","mlx_version":..,"device":..,..}
//! {"cmd":"setup","spec":{...}}     -> {"kind":"ready",..}   (the workload's check values)
//! {"cmd":"warmup","iters":N}       -> {"kind":"warm"}
//! {"cmd":"sample","iters":N}       -> {"kind":"sample","iters":N,"ns_per_iter":..}
//! {"cmd":"quit"}                   (or the end of stdin)
//! ```
//!
//! A failed request answers `{"kind":"error","message":..}` and the program goes on. What an
//! iteration is (a forward pass, a generated token, a training step) is the workload's: see
//! [`Workload::run`]. Lines on stdout that are not JSON objects (progress a workload prints)
//! are skipped by the runner.

use std::io::{BufRead, Write};

use serde_json::{Map, Value, json};

/// A workload served over the protocol.
pub trait Workload {
    /// Prepares one case from the runner's spec, checking or saving its outputs; the fields
    /// it returns go into the `ready` answer.
    fn setup(&mut self, spec: &Value) -> Result<Map<String, Value>, String>;

    /// Runs `iters` iterations of the prepared case and returns nanoseconds per iteration, in
    /// the workload's unit.
    fn run(&mut self, iters: usize) -> Result<f64, String>;
}

/// The info line: `lang`, MLX version and default device (as MLX prints it, `Device(cpu, 0)`),
/// the program's name, and `extra`'s fields (e.g. the weights' checksum).
pub fn info_line(program: &str, extra: Value) -> mlx_rs::Result<Value> {
    let mut info = json!({
        "kind": "info",
        "lang": "rust",
        "program": program,
        "mlx_version": mlx_rs::version()?,
        "device": mlx_rs::Device::default_device()?.to_string(),
    });
    if let (Some(info), Value::Object(extra)) = (info.as_object_mut(), extra) {
        info.extend(extra);
    }
    Ok(info)
}

fn iters_of(request: &Value) -> Result<usize, String> {
    match request.get("iters").and_then(Value::as_u64) {
        Some(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("iters {n} is too large")),
        _ => Err(format!("`iters` must be an integer >= 1 in {request}")),
    }
}

fn error(message: String) -> Value {
    json!({"kind": "error", "message": message})
}

/// The answer to one request line; `None` for `quit`.
pub fn answer(workload: &mut dyn Workload, line: &str, ready: &mut bool) -> Option<Value> {
    let request: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Some(error(format!("the request is not JSON ({e}): {line}"))),
    };
    let reply = match request.get("cmd").and_then(Value::as_str) {
        Some("quit") => return None,
        Some("setup") => {
            *ready = false;
            let spec = request.get("spec").cloned().unwrap_or(Value::Null);
            workload.setup(&spec).map(|mut fields| {
                *ready = true;
                fields.insert("kind".into(), json!("ready"));
                Value::Object(fields)
            })
        }
        Some(cmd @ ("warmup" | "sample")) if !*ready => {
            Err(format!("{cmd} before a successful setup"))
        }
        Some("warmup") => {
            iters_of(&request).and_then(|n| workload.run(n)).map(|_| json!({"kind": "warm"}))
        }
        Some("sample") => iters_of(&request).and_then(|n| {
            workload.run(n).map(|ns| json!({"kind": "sample", "iters": n, "ns_per_iter": ns}))
        }),
        other => Err(format!("unknown command {other:?} in {request}")),
    };
    Some(reply.unwrap_or_else(error))
}

/// Prints `info`, then answers the requests on stdin until `quit` or the end of stdin.
pub fn serve(info: &Value, workload: &mut dyn Workload) -> mlx_rs::Result<()> {
    let io = |e: std::io::Error| mlx_rs::Error::invalid("serve", e.to_string());
    let emit = |v: &Value| -> mlx_rs::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}").and_then(|()| out.flush()).map_err(io)
    };
    emit(info)?;
    let mut ready = false;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        match answer(workload, line.trim(), &mut ready) {
            Some(reply) => emit(&reply)?,
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts iterations; `setup` fails for a spec without `n`.
    struct Counter {
        n: i64,
        ran: usize,
    }

    impl Workload for Counter {
        fn setup(&mut self, spec: &Value) -> Result<Map<String, Value>, String> {
            self.n = spec.get("n").and_then(Value::as_i64).ok_or("no n")?;
            let mut m = Map::new();
            m.insert("checksum".into(), json!(self.n * 2));
            Ok(m)
        }

        fn run(&mut self, iters: usize) -> Result<f64, String> {
            self.ran += iters;
            Ok(1000.0 / iters as f64)
        }
    }

    #[test]
    fn requests_get_their_answers() {
        let mut w = Counter { n: 0, ran: 0 };
        let mut ready = false;
        let mut ask = |line: &str| answer(&mut w, line, &mut ready);
        let e = ask(r#"{"cmd":"sample","iters":2}"#).unwrap();
        assert_eq!(e["message"], "sample before a successful setup");
        assert_eq!(
            ask(r#"{"cmd":"setup","spec":{"n":21}}"#).unwrap(),
            json!({"kind":"ready","checksum":42})
        );
        assert_eq!(ask(r#"{"cmd":"warmup","iters":3}"#).unwrap(), json!({"kind":"warm"}));
        let s = ask(r#"{"cmd":"sample","iters":4}"#).unwrap();
        assert_eq!(s, json!({"kind":"sample","iters":4,"ns_per_iter":250.0}));
        let e = ask(r#"{"cmd":"sample","iters":0}"#).unwrap();
        assert!(e["message"].as_str().unwrap().contains("`iters` must be an integer >= 1"), "{e}");
        let e = ask(r#"{"cmd":"setup","spec":{}}"#).unwrap();
        assert_eq!(e, json!({"kind":"error","message":"no n"}));
        // A failed setup leaves nothing to sample.
        let e = ask(r#"{"cmd":"warmup","iters":1}"#).unwrap();
        assert_eq!(e["message"], "warmup before a successful setup");
        let e = ask("not json").unwrap();
        assert!(e["message"].as_str().unwrap().starts_with("the request is not JSON"), "{e}");
        let e = ask(r#"{"cmd":"fly"}"#).unwrap();
        assert!(e["message"].as_str().unwrap().starts_with("unknown command Some(\"fly\")"), "{e}");
        assert_eq!(ask(r#"{"cmd":"quit"}"#), None);
        assert_eq!(w.ran, 7);
    }

    #[test]
    fn the_info_line_names_version_and_device() {
        let info = info_line("t", json!({"weights_checksum": "00ff"})).unwrap();
        assert_eq!((info["kind"].as_str(), info["lang"].as_str()), (Some("info"), Some("rust")));
        assert_eq!(info["mlx_version"].as_str().unwrap(), mlx_rs::version().unwrap());
        assert!(info["device"].as_str().unwrap().starts_with("Device("), "{info}");
        assert_eq!(info["weights_checksum"], "00ff");
    }
}
