//! CPU time and memory of the processes under test, read from /proc (Linux only; elsewhere
//! the figures are absent).

/// Clock ticks per second for utime/stime in /proc/<pid>/stat. 100 on every Linux
/// architecture we run on (USER_HZ); reading it properly would need libc for one constant.
const TICKS_PER_SEC: f64 = 100.0;

/// Sum of user+system CPU seconds of `pids` (all their threads).
pub fn cpu_seconds(pids: &[u32]) -> Option<f64> {
    let mut total = 0.0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may contain spaces; fields are counted after its ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        total += (utime + stime) / TICKS_PER_SEC;
    }
    Some(total)
}

/// The host's CPU time so far, all CPUs together, from the first line of /proc/stat: the
/// total and the part stolen by the hypervisor for other guests.
#[derive(Debug, Clone, Copy)]
pub struct HostCpu {
    total_ticks: u64,
    steal_ticks: u64,
}

impl HostCpu {
    pub fn now() -> Option<HostCpu> {
        parse_host_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of the CPU time since `earlier` that was stolen, in percent. Steal is time
    /// our runnable threads waited for a physical CPU: on a VM with busy neighbours it is
    /// what turns tails and CPU figures into noise.
    pub fn steal_percent_since(&self, earlier: &HostCpu) -> Option<f64> {
        let total = self.total_ticks.checked_sub(earlier.total_ticks)?;
        let steal = self.steal_ticks.checked_sub(earlier.steal_ticks)?;
        (total > 0).then(|| steal as f64 * 100.0 / total as f64)
    }
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
/// already counted in user, so it is left out of the total.
fn parse_host_cpu(stat: &str) -> Option<HostCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(HostCpu {
        total_ticks: fields.iter().sum(),
        steal_ticks: *fields.get(7)?,
    })
}

/// A `kB` field of /proc/<pid>/status, summed over `pids` (e.g. `VmRSS`, `VmHWM`).
pub fn status_kb(pids: &[u32], field: &str) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })?;
        total += line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// `pid` and its direct children (nginx's master and its workers).
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// A short description of the machine for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    let mem_mb = status_like("/proc/meminfo", "MemTotal").map_or(0, |kb| kb / 1024);
    format!("{cpus} CPUs ({model}), {mem_mb} MB RAM, Linux {kernel}")
}

fn status_like(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_a_share_of_all_cpu_time_since_the_first_reading() {
        let before = parse_host_cpu("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n").unwrap();
        let after = parse_host_cpu("cpu  150 0 70 900 10 0 5 65 0 0\n").unwrap();
        // 200 ticks in all since the first reading, 30 of them stolen.
        assert_eq!(after.steal_percent_since(&before), Some(15.0));
        assert_eq!(before.steal_percent_since(&before), None);
        assert!(
            parse_host_cpu("cpu  1 2 3\n").is_none(),
            "a kernel without steal"
        );
    }
}
