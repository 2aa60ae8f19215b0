//! The host's CPU, load and memory, from /proc (Linux).

/// CPU figures. `busy_ratio` is the share of all cores' time spent busy since the previous
/// sample (none on the first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cpu {
    pub cores: u32,
    pub busy_ratio: Option<f64>,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub total_bytes: u64,
    /// What can be given to programs without swapping (MemAvailable).
    pub available_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Host {
    pub cpu: Cpu,
    pub memory: Memory,
}

/// Busy and total jiffies of the previous sample.
#[derive(Default)]
pub struct CpuMeter {
    previous: Option<(u64, u64)>,
}

impl CpuMeter {
    /// The busy share since the previous reading of the aggregate `cpu` line.
    fn update(&mut self, busy: u64, total: u64) -> Option<f64> {
        let ratio = self.previous.and_then(|(b, t)| {
            let elapsed = total.checked_sub(t)?;
            (elapsed > 0).then(|| busy.saturating_sub(b) as f64 / elapsed as f64)
        });
        self.previous = Some((busy, total));
        ratio.map(|r| r.clamp(0.0, 1.0))
    }
}

pub async fn sample(meter: &mut CpuMeter) -> Result<Host, String> {
    let read = |path: &'static str| async move {
        tokio::fs::read_to_string(path)
            .await
            .map_err(|err| format!("{path}: {err}"))
    };
    let stat = read("/proc/stat").await?;
    let loadavg = read("/proc/loadavg").await?;
    let meminfo = read("/proc/meminfo").await?;
    let (busy, total, cores) = parse_stat(&stat).ok_or("/proc/stat: no aggregate cpu line")?;
    let load: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    let [load1, load5, load15] = load[..] else {
        return Err(format!("/proc/loadavg: unexpected {loadavg:?}"));
    };
    Ok(Host {
        cpu: Cpu {
            cores,
            busy_ratio: meter.update(busy, total),
            load1,
            load5,
            load15,
        },
        memory: parse_meminfo(&meminfo).ok_or("/proc/meminfo: no MemTotal or MemAvailable")?,
    })
}

/// Busy and total jiffies of the aggregate line, and the number of per-core lines.
fn parse_stat(text: &str) -> Option<(u64, u64, u32)> {
    let mut aggregate = None;
    let mut cores = 0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let values: Vec<u64> = fields.filter_map(|v| v.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal (guest time is inside user)
                let total: u64 = values.iter().take(8).sum();
                let idle =
                    values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
                aggregate = Some((total.saturating_sub(idle), total));
            }
            Some(name) if name.starts_with("cpu") => cores += 1,
            _ => {}
        }
    }
    aggregate.map(|(busy, total)| (busy, total, cores))
}

fn parse_meminfo(text: &str) -> Option<Memory> {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
    };
    Some(Memory {
        total_bytes: field("MemTotal:")?,
        available_bytes: field("MemAvailable:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_busy_total_and_cores() {
        let text = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
        assert_eq!(parse_stat(text), Some((150, 1000, 2)));
        let mut meter = CpuMeter::default();
        assert_eq!(meter.update(150, 1000), None);
        assert_eq!(meter.update(250, 1400), Some(0.25));
    }

    #[test]
    fn meminfo_in_bytes() {
        let text = "MemTotal:       2048 kB\nMemFree:        100 kB\nMemAvailable:   1024 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(Memory {
                total_bytes: 2048 * 1024,
                available_bytes: 1024 * 1024
            })
        );
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
    }
}
