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
}
