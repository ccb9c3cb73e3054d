//! Order statistics over samples. Medians, not means: on a shared machine
//! a run that lost its core to another process is an outlier to ignore,
//! not a cost to average in.

/// The median (the mean of the two middle values for an even count);
/// `None` for no samples.
pub fn median(samples: &[f64]) -> Option<f64> {
    let sorted = sorted(samples);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The `p`-th percentile (0..=100) by the nearest-rank method: the
/// smallest sample with at least p% of the samples at or below it.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let sorted = sorted(samples);
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of the ratios `a[i] / b[i]` of paired samples (taken in the
/// same round), which cancels drift that affects both members of a pair.
pub fn median_ratio(a: &[f64], b: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, d)| **d > 0.0)
        .map(|(n, d)| n / d)
        .collect();
    median(&ratios)
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        #[track_caller]
        fn check(samples: &[f64], want_median: Option<f64>, want_p99: Option<f64>) {
            assert_eq!(median(samples), want_median, "median of {samples:?}");
            assert_eq!(percentile(samples, 99.0), want_p99, "p99 of {samples:?}");
        }
        check(&[], None, None);
        check(&[7.0], Some(7.0), Some(7.0));
        check(&[3.0, 1.0, 2.0], Some(2.0), Some(3.0));
        check(&[4.0, 1.0, 3.0, 2.0], Some(2.5), Some(4.0));
        check(&[1.0, f64::NAN, 5.0], Some(3.0), Some(5.0));
        // 100 samples 1..=100: p99 is the 99th smallest.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        check(&hundred, Some(50.5), Some(99.0));
    }

    #[test]
    fn percentile_ranks() {
        let samples: Vec<f64> = (1..=10).map(f64::from).collect();
        for (p, want) in [
            (0.0, 1.0),
            (10.0, 1.0),
            (11.0, 2.0),
            (50.0, 5.0),
            (90.0, 9.0),
            (100.0, 10.0),
        ] {
            assert_eq!(percentile(&samples, p), Some(want), "p{p} of 1..=10");
        }
    }

    #[test]
    fn ratios_pair_samples_of_one_round() {
        assert_eq!(
            median_ratio(&[10.0, 30.0, 20.0], &[5.0, 10.0, 10.0]),
            Some(2.0)
        );
        assert_eq!(
            median_ratio(&[1.0], &[0.0]),
            None,
            "a zero denominator is no ratio"
        );
        assert_eq!(median_ratio(&[], &[]), None);
    }
}
