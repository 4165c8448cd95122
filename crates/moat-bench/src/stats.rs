//! Summary statistics over a set of timed runs.

use std::time::Duration;

use serde::Serialize;

/// Median, 95th percentile and range of a set of timings, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Number of timed runs, warm-up runs excluded.
    pub runs: usize,
    pub median_ms: f64,
    /// 95th percentile by the nearest-rank method: the smallest timing that
    /// is at least as large as 95 % of all timings.
    pub p95_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarises `timings`, or returns `None` when there are none.
    pub fn of(timings: &[Duration]) -> Option<Summary> {
        if timings.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = timings
            .iter()
            .map(|timing| timing.as_secs_f64() * 1e3)
            .collect();
        sorted.sort_by(f64::total_cmp);

        let count = sorted.len();
        let middle = count / 2;
        let median_ms = match count % 2 {
            0 => (sorted[middle - 1] + sorted[middle]) / 2.0,
            _ => sorted[middle],
        };
        // Nearest rank: ceil(0.95 * n), counted from 1.
        let p95_rank = (count * 95).div_ceil(100).max(1);

        Some(Summary {
            runs: count,
            median_ms,
            p95_ms: sorted[p95_rank - 1],
            min_ms: sorted[0],
            max_ms: sorted[count - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values
            .iter()
            .map(|value| Duration::from_millis(*value))
            .collect()
    }

    #[test]
    fn summary_of_nothing_is_none() {
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn median_of_odd_count_is_middle() {
        let summary = Summary::of(&millis(&[5, 1, 3])).expect("three timings");
        assert_eq!(summary.median_ms, 3.0);
        assert_eq!(summary.min_ms, 1.0);
        assert_eq!(summary.max_ms, 5.0);
    }

    #[test]
    fn median_of_even_count_averages() {
        let summary = Summary::of(&millis(&[4, 1, 2, 3])).expect("four timings");
        assert_eq!(summary.median_ms, 2.5);
    }

    #[test]
    fn p95_uses_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        let summary = Summary::of(&millis(&hundred)).expect("100 timings");
        assert_eq!(summary.p95_ms, 95.0);

        let twenty: Vec<u64> = (1..=20).collect();
        let summary = Summary::of(&millis(&twenty)).expect("20 timings");
        assert_eq!(summary.p95_ms, 19.0);

        let single = Summary::of(&millis(&[7])).expect("one timing");
        assert_eq!(single.p95_ms, 7.0);
    }
}
