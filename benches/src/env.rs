//! What a results file records about the run (BENCHMARKING.md, rule 7): machine, device, MLX
//! version, commit, command line and the `MLX_*` environment.

use std::process::Command;

use serde_json::{Value, json};

/// Facts about this run, gathered once.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// `mlx_rs::version()`.
    pub mlx_version: String,
    /// The default device, as MLX prints it (`Device(cpu, 0)`).
    pub device: String,
    /// Host name, OS, architecture, CPU model and count, GPU names.
    pub machine: Value,
    /// `git rev-parse HEAD` (or `FLOOR_COMMIT` where there is no git checkout).
    pub commit: Option<String>,
    /// True when the checkout has uncommitted changes.
    pub dirty: Option<bool>,
    /// The command line.
    pub command: Vec<String>,
    /// Every `MLX_*` variable and the thread-count variables set for this process.
    pub environment: Value,
    /// Seconds since the Unix epoch at the start.
    pub unix_time: u64,
}

fn run_text(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

impl RunInfo {
    /// Gathers the facts; fails only when MLX itself cannot say its version or device.
    pub fn gather() -> mlx_rs::Result<RunInfo> {
        let mlx_version = mlx_rs::version()?;
        let device = mlx_rs::Device::default_device()?.to_string();
        let gpus =
            run_text("nvidia-smi", &["--query-gpu=name,memory.total", "--format=csv,noheader"])
                .map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .or_else(|| run_text("hostname", &[]));
        let machine = json!({
            "host": host,
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "cpu": cpu_model(),
            "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
            "gpus": gpus,
        });
        let commit = run_text("git", &["rev-parse", "HEAD"])
            .or_else(|| std::env::var("FLOOR_COMMIT").ok().filter(|c| !c.is_empty()));
        let dirty = run_text("git", &["rev-parse", "HEAD"])
            .and_then(|_| Command::new("git").args(["status", "--porcelain"]).output().ok())
            .map(|o| !o.stdout.is_empty());
        let environment: serde_json::Map<String, Value> = std::env::vars()
            .filter(|(k, _)| {
                k.starts_with("MLX_")
                    || ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES"]
                        .contains(&k.as_str())
            })
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let unix_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(RunInfo {
            mlx_version,
            device,
            machine,
            commit,
            dirty,
            command: std::env::args().collect(),
            environment: Value::Object(environment),
            unix_time,
        })
    }

    /// The facts as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "mlx_version": self.mlx_version, "device": self.device, "machine": self.machine,
            "commit": self.commit, "dirty": self.dirty, "command": self.command,
            "environment": self.environment, "unix_time": self.unix_time,
            "workspace_version": env!("CARGO_PKG_VERSION"),
        })
    }

    /// `cpu` or `gpu`, for file names.
    pub fn device_kind(&self) -> &'static str {
        if self.device.contains("gpu") { "gpu" } else { "cpu" }
    }
}

/// Writes `json` and `markdown` as `<dir>/<stem>.json` and `.md`; returns the JSON path.
pub fn write_results(
    dir: &std::path::Path,
    stem: &str,
    json: &Value,
    markdown: &str,
) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{stem}.json"));
    let text = serde_json::to_string_pretty(json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let md = dir.join(format!("{stem}.md"));
    std::fs::write(&md, markdown).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    Ok(path)
}
