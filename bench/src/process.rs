//! A process's resident memory and CPU time, read from `/proc` (Linux).

/// Resident memory now and at its peak, in MB, as "N (peak M)"; "n/a" without a pid.
pub fn rss_mb(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return "n/a".into();
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or("n/a".to_string(), |kb| format!("{:.0}", kb / 1024.0))
    };
    format!("{} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) a process has used so far, in milliseconds (`/proc/PID/stat`, in
/// clock ticks of 10 ms).
pub fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let me = std::process::id();
        // Spin a little so at least one clock tick is charged to this process.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_ms(me).is_some_and(|ms| ms > 0));
        assert!(!rss_mb(Some(me)).starts_with("n/a"));
        assert_eq!(rss_mb(None), "n/a");
        assert_eq!(cpu_ms(u32::MAX), None);
    }
}
