//! A small `--flag value` parser for the bench binaries: every flag is looked up once, and
//! whatever is left over is an error naming it.

/// Formats a usage error (the binaries print it with their usage text).
pub fn usage_error(msg: &str) -> String {
    format!("error: {msg}")
}

/// The flags of one command line, consumed as they are looked up.
#[derive(Debug)]
pub struct Flags {
    values: Vec<(String, Option<String>)>,
}

impl Flags {
    /// Splits `args` into `--flag value` pairs; the flags named in `switches` take no value.
    pub fn new(args: &[String], switches: &[&str]) -> Result<Flags, String> {
        let mut values = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if !arg.starts_with("--") {
                return Err(usage_error(&format!("unexpected argument `{arg}`")));
            }
            if values.iter().any(|(f, _): &(String, _)| f == arg) {
                return Err(usage_error(&format!("{arg} is given twice")));
            }
            if switches.contains(&arg.as_str()) {
                values.push((arg.clone(), None));
            } else {
                values.push((arg.clone(), it.next().cloned()));
            }
        }
        Ok(Flags { values })
    }

    fn take(&mut self, flag: &str) -> Option<Option<String>> {
        let i = self.values.iter().position(|(f, _)| f == flag)?;
        Some(self.values.remove(i).1)
    }

    /// True when the switch `flag` is present.
    pub fn switch(&mut self, flag: &str) -> bool {
        self.take(flag).is_some()
    }

    /// The value of `flag`, if given. A flag given without a value is kept for [`Flags::finish`]
    /// to report.
    pub fn value(&mut self, flag: &str) -> Option<String> {
        match self.take(flag) {
            Some(Some(v)) => Some(v),
            Some(None) => {
                self.values.push((flag.to_owned(), None));
                None
            }
            None => None,
        }
    }

    /// The integer value of `flag` (at least `min`), or `default`.
    pub fn count(&mut self, flag: &str, default: usize, min: usize) -> Result<usize, String> {
        match self.take(flag) {
            None => Ok(default),
            Some(None) => Err(usage_error(&format!("{flag} needs a value"))),
            Some(Some(v)) => match v.parse::<usize>() {
                Ok(x) if x >= min => Ok(x),
                _ => Err(usage_error(&format!("{flag} wants an integer >= {min}, got `{v}`"))),
            },
        }
    }

    /// Errors for any flag that was not looked up, or that lacked its value.
    pub fn finish(self) -> Result<(), String> {
        match self.values.into_iter().next() {
            None => Ok(()),
            Some((flag, None)) => Err(usage_error(&format!(
                "{flag} needs a value (or is an unknown argument `{flag}`)"
            ))),
            Some((flag, _)) => Err(usage_error(&format!("unknown argument `{flag}`"))),
        }
    }
}

/// The options of the kernel sweeps (`moe_paths`, `fused_paths`):
/// `[--quick] [--tokens 1,2,4,...] [--budget-ms MS] [--out DIR]` plus each binary's own switches.
#[derive(Debug)]
pub struct SweepArgs {
    /// Small sizes in float32, for a CPU smoke run.
    pub quick: bool,
    /// Token counts (`--tokens`), if given.
    pub tokens: Option<Vec<i32>>,
    /// Milliseconds of timing per path and case (`--budget-ms`), if given.
    pub budget_ms: Option<f64>,
    /// Where the JSON and Markdown go (`--out`, default `benches/results`).
    pub out: std::path::PathBuf,
    /// The binary's own switches that were given.
    pub switches: Vec<String>,
}

impl SweepArgs {
    /// Parses `args`; `switches` are the binary's own flags without a value.
    pub fn parse(args: &[String], switches: &[&str]) -> Result<SweepArgs, String> {
        let all: Vec<&str> = ["--quick"].iter().chain(switches).copied().collect();
        let mut f = Flags::new(args, &all)?;
        let tokens = match f.value("--tokens") {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(|t| match t.trim().parse::<i32>() {
                        Ok(n) if n >= 1 => Ok(n),
                        _ => Err(usage_error(&format!("--tokens: bad count `{t}` (want >= 1)"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let budget_ms = match f.value("--budget-ms") {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|ms| *ms > 0.0)
                    .ok_or_else(|| usage_error("--budget-ms needs a positive number"))?,
            ),
        };
        let out = f.value("--out").map_or_else(
            || concat!(env!("CARGO_MANIFEST_DIR"), "/results").into(),
            std::path::PathBuf::from,
        );
        let quick = f.switch("--quick");
        let switches = switches.iter().filter(|s| f.switch(s)).map(|s| (*s).to_owned()).collect();
        f.finish()?;
        Ok(SweepArgs { quick, tokens, budget_ms, out, switches })
    }
}

/// A bench binary's `main`: `-h`/`--help` prints `usage`; an error from `run` is printed with
/// it and gives a failing exit status.
pub fn main_with_usage(
    name: &str,
    usage: &str,
    run: impl FnOnce(&[String]) -> Result<(), String>,
) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{usage}");
        return std::process::ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{name}: {msg}\n{usage}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(xs: &[&str]) -> Flags {
        let args: Vec<String> = xs.iter().map(|s| (*s).to_owned()).collect();
        Flags::new(&args, &["--quiet"]).unwrap()
    }

    #[test]
    fn values_switches_and_counts() {
        let mut f = flags(&["--n", "7", "--quiet", "--out", "dir"]);
        assert_eq!(f.count("--n", 1, 1), Ok(7));
        assert_eq!(f.count("--reps", 20, 1), Ok(20));
        assert!(f.switch("--quiet"));
        assert_eq!(f.value("--out").as_deref(), Some("dir"));
        assert_eq!(f.finish(), Ok(()));
    }

    #[test]
    fn leftovers_and_bad_values_are_errors() {
        let f = flags(&["--what", "1"]);
        assert_eq!(f.finish(), Err("error: unknown argument `--what`".to_owned()));
        let mut f = flags(&["--n", "-3"]);
        assert_eq!(f.count("--n", 1, 1), Err("error: --n wants an integer >= 1, got `-3`".into()));
        let mut f = flags(&["--out"]);
        assert_eq!(f.value("--out"), None);
        assert!(f.finish().unwrap_err().contains("--out needs a value"));
        let args: Vec<String> = ["--n", "1", "--n", "2"].iter().map(|s| (*s).to_owned()).collect();
        assert!(Flags::new(&args, &[]).unwrap_err().contains("--n is given twice"));
        let args = vec!["stray".to_owned()];
        assert!(Flags::new(&args, &[]).unwrap_err().contains("unexpected argument `stray`"));
    }

    #[test]
    fn sweep_args_take_their_flags_and_the_binary_switches() {
        let args: Vec<String> = ["--tokens", "1,8", "--bits-sweep", "--quick"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let a = SweepArgs::parse(&args, &["--bits-sweep"]).unwrap();
        assert_eq!((a.quick, a.tokens, a.budget_ms), (true, Some(vec![1, 8]), None));
        assert_eq!(a.switches, ["--bits-sweep"]);
        let bad: Vec<String> = ["--tokens", "0"].iter().map(|s| (*s).to_owned()).collect();
        assert!(SweepArgs::parse(&bad, &[]).unwrap_err().contains("bad count `0`"));
        let unknown: Vec<String> = ["--bits-sweep"].iter().map(|s| (*s).to_owned()).collect();
        assert!(SweepArgs::parse(&unknown, &[]).unwrap_err().contains("--bits-sweep"));
    }
}
