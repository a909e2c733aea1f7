//! CPU time and resident memory of a process, from `/proc`.

use std::time::Duration;

/// User + system CPU time of process `pid` (all its threads, live and exited), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after it are space-separated. utime, stime are
    // fields 14 and 15 of the whole line, i.e. 12 and 13 after the name.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Resident set size of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// UDP datagrams the kernel dropped in this network namespace (the load tool's, shared with the
/// server it started): receive-buffer overflows and send-buffer failures, from `/proc/self/net/snmp`.
pub fn udp_drops() -> Option<[u64; 2]> {
    let snmp = std::fs::read_to_string("/proc/self/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let field = |name: &str| {
        let i = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(i)?.parse::<u64>().ok()
    };
    Some([field("RcvbufErrors")?, field("SndbufErrors")?])
}

/// Datagrams the kernel dropped at UDP sockets of this namespace (full receive buffers), from the
/// `drops` column of `/proc/self/net/udp`: [at sockets bound to `port`, at every other socket].
/// Counters of sockets open for the whole window, so the difference of two readings is exact.
pub fn udp_socket_drops(port: Option<u16>) -> Option<[u64; 2]> {
    let table = std::fs::read_to_string("/proc/self/net/udp").ok()?;
    let mut drops = [0u64; 2];
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(d)) = (fields.get(1), fields.last()) else { continue };
        let Ok(d) = d.parse::<u64>() else { continue };
        let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
        drops[usize::from(port.is_none() || local_port != port)] += d;
    }
    Some(drops)
}

/// CPU time of this process (user + system), from `getrusage`.
pub fn own_cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Pins this process (every thread created from now on) to one CPU.
pub fn pin_self(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_figures() {
        let me = std::process::id();
        assert!(super::cpu_time(me).is_some());
        assert!(super::rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(super::udp_drops().is_some(), "Udp lines of /proc/self/net/snmp");
        let _socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert!(super::udp_socket_drops(Some(9)).is_some(), "/proc/self/net/udp");
    }
}
