//! Order statistics for timing samples: median and min–max spread (BENCHMARKING.md, rule 4).

/// Median and spread of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// The summary of `samples`; `None` when there are none or one is NaN.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| x.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median =
            if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Summary { count: n, median, min: sorted[0], max: sorted[n - 1] })
    }

    /// Every figure multiplied by `factor` (a change of unit).
    pub fn scaled(self, factor: f64) -> Summary {
        Summary {
            count: self.count,
            median: self.median * factor,
            min: self.min * factor,
            max: self.max * factor,
        }
    }
}

/// The median of `samples`; `None` when there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    Summary::of(samples).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_takes_the_middle() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(s, Summary { count: 3, median: 3.0, min: 1.0, max: 5.0 });
    }

    #[test]
    fn even_count_averages_the_two_middle_values() {
        let s = Summary::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 10.0));
    }

    #[test]
    fn empty_and_nan_have_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn scaling_changes_every_figure() {
        let s = Summary::of(&[1000.0, 3000.0]).unwrap().scaled(1e-3);
        assert_eq!((s.count, s.median, s.min, s.max), (2, 2.0, 1.0, 3.0));
    }
}
