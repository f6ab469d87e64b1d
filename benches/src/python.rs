//! The long-lived children of the `compare` runner: the Python twin of the microbenchmarks
//! (`benches/python/micro.py --serve`) and the model programs' `--serve` modes (the Rust
//! examples and their Python twins, [`crate::models`]). One JSON request per line on the
//! child's stdin, one JSON answer per line on its stdout; stdout lines that are not JSON objects
//! (a program's progress output) are skipped and kept for error messages.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// What the child says about itself on start.
#[derive(Clone, Debug, PartialEq)]
pub struct PythonInfo {
    /// `mx.__version__`.
    pub mlx_version: String,
    /// `str(mx.default_device())`.
    pub device: String,
    /// The interpreter's version (empty for a Rust child).
    pub python: String,
    /// The whole line, for the results file.
    pub raw: Value,
}

/// Parses the child's info line and refuses a child that does not run the Rust side's MLX
/// version on the Rust side's device.
pub fn check_info(
    line: &str,
    rust_version: &str,
    rust_device: &str,
    python: &str,
) -> Result<PythonInfo, String> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("the Python child's first line is not JSON ({e}): {line}"))?;
    let text = |key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the Python child's info line has no `{key}`: {line}"))
    };
    if v.get("kind").and_then(Value::as_str) != Some("info") {
        return Err(format!("the Python child's first line is not its info line: {line}"));
    }
    let info = PythonInfo {
        mlx_version: text("mlx_version")?,
        device: text("device")?,
        python: v.get("python").and_then(Value::as_str).unwrap_or_default().to_owned(),
        raw: v.clone(),
    };
    if info.mlx_version != rust_version {
        return Err(format!(
            "`{python}` imports MLX {} but the Rust side links MLX {rust_version}: the comparison \
             needs the same MLX on both sides (pip install mlx=={rust_version}, or pass \
             --python EXE)",
            info.mlx_version
        ));
    }
    if info.device != rust_device {
        return Err(format!(
            "`{python}` runs on {} but the Rust side on {rust_device}: both sides need the same \
             device",
            info.device
        ));
    }
    Ok(info)
}

/// The running child.
#[derive(Debug)]
pub struct PythonChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    what: String,
    skipped: Vec<String>,
    /// Its info line, checked.
    pub info: PythonInfo,
}

/// How many skipped lines a child keeps for its error messages.
const KEEP_SKIPPED: usize = 20;

/// The next line of `reader` that is a JSON object (starts with `{`), trimmed; the lines before
/// it go to `skipped` (the last 20). `None` at the end of the stream.
pub fn next_json_line<R: BufRead>(
    reader: &mut R,
    skipped: &mut Vec<String>,
) -> std::io::Result<Option<String>> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim();
        if line.starts_with('{') {
            return Ok(Some(line.to_owned()));
        }
        if !line.is_empty() {
            if skipped.len() == KEEP_SKIPPED {
                skipped.remove(0);
            }
            skipped.push(line.to_owned());
        }
    }
}

/// `err` with the child's last skipped stdout lines, if any.
fn with_output(err: String, skipped: &[String]) -> String {
    if skipped.is_empty() {
        err
    } else {
        format!("{err}\n  (its last output: {})", skipped.join(" | "))
    }
}

fn stderr_of(child: &mut Child) -> String {
    let _ = child.wait();
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
    }
    text.trim().to_owned()
}

impl PythonChild {
    /// Starts `python script --serve` and checks its MLX version and device against the Rust
    /// side's.
    pub fn spawn(
        python: &str,
        script: &Path,
        rust_version: &str,
        rust_device: &str,
    ) -> Result<PythonChild, String> {
        if !script.is_file() {
            return Err(format!("the Python twin {} does not exist", script.display()));
        }
        let args = [script.display().to_string(), "--serve".to_owned()];
        let not_found = format!(
            "Python interpreter `{python}` not found: install Python 3 with \
             mlx=={rust_version}, or pass --python EXE"
        );
        PythonChild::spawn_program(python, &args, &[], &not_found, rust_version, rust_device)
    }

    /// Starts `program args...` (whose arguments include its `--serve`) with the environment
    /// variables `env` added, waits for its info line and checks its MLX version and device
    /// against the Rust side's; `not_found` is the error when `program` does not exist.
    pub fn spawn_program(
        program: &str,
        args: &[String],
        env: &[(String, String)],
        not_found: &str,
        rust_version: &str,
        rust_device: &str,
    ) -> Result<PythonChild, String> {
        let what = format!("`{program} {}`", args.join(" "));
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    not_found.to_owned()
                } else {
                    format!("cannot start {what}: {e}")
                }
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!("{what}: no pipes to the child"));
        };
        let mut stdout = BufReader::new(stdout);
        let mut skipped = Vec::new();
        let line = match next_json_line(&mut stdout, &mut skipped) {
            Ok(Some(line)) => line,
            _ => {
                let status = child.try_wait().ok().flatten();
                let err = stderr_of(&mut child);
                if status.and_then(|s| s.code()) == Some(3) || err.contains("cannot import mlx") {
                    return Err(format!(
                        "`{program}` has no MLX ({err}): pip install mlx=={rust_version}, or \
                         pass --python EXE"
                    ));
                }
                return Err(with_output(format!("{what} printed no info line: {err}"), &skipped));
            }
        };
        let info = match check_info(&line, rust_version, rust_device, program) {
            Ok(info) => info,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(PythonChild { child, stdin, stdout, what, skipped, info })
    }

    /// Sends one request and returns the answer; an `error` answer becomes `Err`.
    pub fn request(&mut self, request: &Value) -> Result<Value, String> {
        let line = request.to_string();
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("{}: cannot write to the child: {e}", self.what))?;
        self.skipped.clear();
        let answer = match next_json_line(&mut self.stdout, &mut self.skipped) {
            Ok(Some(answer)) => answer,
            Ok(None) | Err(_) => {
                let err = stderr_of(&mut self.child);
                return Err(with_output(format!("{} died: {err}", self.what), &self.skipped));
            }
        };
        let v: Value = serde_json::from_str(&answer)
            .map_err(|e| format!("{}: answer is not JSON ({e}): {answer}", self.what))?;
        if v.get("kind").and_then(Value::as_str) == Some("error") {
            let msg = v.get("message").and_then(Value::as_str).unwrap_or("(no message)");
            let side = if self.info.raw["lang"] == "rust" { "Rust" } else { "Python" };
            return Err(format!("{side}: {msg}"));
        }
        Ok(v)
    }

    /// Builds a case from its spec (`Spec::to_json`); returns the child's checksum and its
    /// note on how it built the case, if any.
    pub fn setup(&mut self, spec: &Value) -> Result<(f64, Option<String>), String> {
        let v = self.request(&json!({"cmd": "setup", "spec": spec}))?;
        let sum = v
            .get("checksum")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("no checksum in {v}"))?;
        Ok((sum, v.get("note").and_then(Value::as_str).map(str::to_owned)))
    }

    /// Runs `iters` unmeasured iterations.
    pub fn warmup(&mut self, iters: usize) -> Result<(), String> {
        self.request(&json!({"cmd": "warmup", "iters": iters})).map(|_| ())
    }

    /// One sample: nanoseconds per iteration over `iters` iterations.
    pub fn sample(&mut self, iters: usize) -> Result<f64, String> {
        let v = self.request(&json!({"cmd": "sample", "iters": iters}))?;
        v.get("ns_per_iter").and_then(Value::as_f64).ok_or_else(|| format!("no ns_per_iter in {v}"))
    }

    /// Asks the child to quit and waits for it.
    pub fn quit(mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"info","lang":"python","mlx_version":"0.32.2","device":"Device(cpu, 0)","python":"3.11.7"}"#;

    #[test]
    fn same_version_and_device_pass() {
        let i = check_info(LINE, "0.32.2", "Device(cpu, 0)", "python3").unwrap();
        assert_eq!((i.mlx_version.as_str(), i.python.as_str()), ("0.32.2", "3.11.7"));
        assert_eq!(i.raw["lang"], "python");
    }

    #[test]
    fn other_version_or_device_is_refused() {
        let e = check_info(LINE, "0.31.0", "Device(cpu, 0)", "py").unwrap_err();
        assert!(e.contains("imports MLX 0.32.2 but the Rust side links MLX 0.31.0"), "{e}");
        assert!(e.contains("pip install mlx==0.31.0"), "{e}");
        let e = check_info(LINE, "0.32.2", "Device(gpu, 0)", "py").unwrap_err();
        assert!(e.contains("runs on Device(cpu, 0) but the Rust side on Device(gpu, 0)"), "{e}");
        let e = check_info("nope", "0.32.2", "x", "py").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let e = check_info(r#"{"kind":"sample"}"#, "0.32.2", "x", "py").unwrap_err();
        assert!(e.contains("not its info line"), "{e}");
    }

    #[test]
    fn output_that_is_not_json_is_skipped_and_kept() {
        let text = "drawing weights ...\n\n{\"kind\":\"ready\"}\nlast words\n";
        let mut reader = std::io::Cursor::new(text.as_bytes());
        let mut skipped = Vec::new();
        let line = next_json_line(&mut reader, &mut skipped).unwrap();
        assert_eq!(line.as_deref(), Some(r#"{"kind":"ready"}"#));
        assert_eq!(skipped, vec!["drawing weights ...".to_owned()]);
        assert_eq!(next_json_line(&mut reader, &mut skipped).unwrap(), None);
        assert_eq!(skipped.len(), 2);
        let e = with_output("it died".into(), &skipped);
        assert_eq!(e, "it died\n  (its last output: drawing weights ... | last words)");
        let mut many = Vec::new();
        let lines: String = (0..30).map(|i| format!("line {i}\n")).collect();
        next_json_line(&mut std::io::Cursor::new(lines.as_bytes()), &mut many).unwrap();
        assert_eq!((many.len(), many[0].as_str()), (KEEP_SKIPPED, "line 10"));
    }

    #[test]
    fn a_rust_info_line_needs_no_python_version() {
        let line =
            r#"{"kind":"info","lang":"rust","mlx_version":"0.32.2","device":"Device(cpu, 0)"}"#;
        let i = check_info(line, "0.32.2", "Device(cpu, 0)", "single_seqlen").unwrap();
        assert_eq!((i.python.as_str(), i.raw["lang"].as_str()), ("", Some("rust")));
    }

    #[test]
    fn missing_interpreter_is_a_clear_error() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/micro.py");
        let e = PythonChild::spawn("/nonexistent/python9", &script, "0.32.2", "x").unwrap_err();
        assert!(e.contains("Python interpreter `/nonexistent/python9` not found"), "{e}");
        let e =
            PythonChild::spawn("python3", Path::new("/no/micro.py"), "0.32.2", "x").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }
}
