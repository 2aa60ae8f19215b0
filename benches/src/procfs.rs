//! What the benchmarks read about a process from /proc: resident memory and CPU time.

use std::sync::OnceLock;

use anyhow::Context;

/// Resident set size in KiB (`VmRSS` of /proc/PID/status); `pid` may be "self".
pub fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// User plus system CPU time of every thread of the process, in seconds; `pid` may be
/// "self".
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is parenthesised and may hold spaces: count fields after
    // its closing parenthesis. Field 3 is the state, fields 14 and 15 utime and stime.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("unexpected {path}"))
    };
    // Field n is at index n - 3 of `fields`.
    Ok((ticks(11)? + ticks(12)?) as f64 / clock_ticks_per_second())
}

/// `getconf CLK_TCK`, read once; 100 (Linux's USER_HZ) when getconf is missing.
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
