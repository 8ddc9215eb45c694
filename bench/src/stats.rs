//! Percentiles of a sample.

/// The `p` quantile (0–1, nearest rank) of `sorted` (ascending, in microseconds), in
/// milliseconds; NaN for an empty sample.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::pct;

    #[test]
    fn nearest_rank_in_milliseconds() {
        let sample: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(pct(&sample, 0.5), 51.0);
        assert_eq!(pct(&sample, 0.99), 99.0);
        assert_eq!(pct(&sample, 1.0), 100.0);
        assert_eq!(pct(&sample, 0.0), 1.0);
        assert!(pct(&[], 0.5).is_nan());
    }
}
