//! Percentiles of a sample.

/// The `p` quantile (0–1, nearest rank) of `sorted` (ascending, in microseconds), in
/// milliseconds; NaN for an empty sample.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    rank(sorted, p).map_or(f64::NAN, |us| us as f64 / 1000.0)
}

/// The `p` quantile (0–1, nearest rank) of `sorted` (ascending), as it is; None for an empty
/// sample.
pub fn rank(sorted: &[u64], p: f64) -> Option<u64> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last as f64 * p).round() as usize).copied()
}

/// One TCP connection's first-event latencies (µs): its first stream's, the median and the
/// last stream's. `K` names the connection.
#[derive(Debug, PartialEq)]
pub struct Spread<K> {
    pub socket: K,
    pub first: u64,
    pub median: u64,
    pub last: u64,
}

/// Where a late tail sits: `samples` are (TCP connection, latency in µs). Returns how many
/// connections carry a sample over `threshold`, and the spread of each connection, the one
/// with the latest last sample first. A tail on a few connections points at those connections
/// (their writer or their reader), one spread over all at the pass through every stream.
pub fn tail_by_connection<K: Ord + Copy>(
    samples: &[(K, u64)],
    threshold: u64,
) -> (usize, Vec<Spread<K>>) {
    let mut by_socket: std::collections::BTreeMap<K, Vec<u64>> = Default::default();
    for &(socket, lat) in samples {
        by_socket.entry(socket).or_default().push(lat);
    }
    let mut spreads: Vec<Spread<K>> = by_socket
        .into_iter()
        .map(|(socket, mut lat)| {
            lat.sort_unstable();
            Spread {
                socket,
                first: lat[0],
                median: lat[lat.len() / 2],
                last: lat[lat.len() - 1],
            }
        })
        .collect();
    spreads.sort_by_key(|s| std::cmp::Reverse(s.last));
    let late = spreads.iter().filter(|s| s.last > threshold).count();
    (late, spreads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_is_counted_by_the_connections_it_is_on() {
        // Connection 7 has two late streams, connection 3 one early and one late, 1 none.
        let samples = [
            (1, 10),
            (1, 20),
            (7, 900),
            (3, 5),
            (7, 800),
            (3, 700),
            (7, 1),
        ];
        let (late, spreads) = tail_by_connection(&samples, 500);
        assert_eq!(late, 2);
        assert_eq!(
            spreads[0],
            Spread {
                socket: 7,
                first: 1,
                median: 800,
                last: 900
            }
        );
        assert_eq!(spreads[1].socket, 3);
        assert_eq!((spreads[1].first, spreads[1].last), (5, 700));
        assert_eq!(spreads[2].last, 20);
        assert_eq!(tail_by_connection::<usize>(&[], 0), (0, vec![]));
    }

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
