//! The four scenarios, run against this host only, without root and without sending a
//! packet to any other machine: everything is read from `/proc`, `/etc` and the
//! package database. Each parser takes the file's text, so it is tested on fixtures.
//!
//! Results are built as `fleetpass_domain::scan::ScanResults`, the type the server
//! decodes them into, and validated with the server's own rules before they are sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Instant;

use fleetpass_domain::scan::{
    Asset, Finding, Listener, MAX_LISTENERS, MaxAssets, Protocol, ScanResults, Scenario, Severity,
    Software,
};
use fleetpass_domain::value::Text;

/// The limits one run must keep: the scan's deadline and asset cap.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop collecting at this instant (a margin before `maxDurationMinutes` ends, so
    /// the results still arrive in time).
    pub deadline: Instant,
    /// The scan's `maxAssets`.
    pub max_assets: Option<MaxAssets>,
}

impl Budget {
    fn over(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// Where the collectors read from; `/` on a real host, a fixture tree in tests.
#[derive(Debug, Clone)]
pub struct Host {
    root: std::path::PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self { root: "/".into() }
    }
}

impl Host {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/'))).ok()
    }

    fn path(&self, path: &str) -> std::path::PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The host name, from the kernel.
    pub fn hostname(&self) -> String {
        self.read("/proc/sys/kernel/hostname")
            .or_else(|| self.read("/etc/hostname"))
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    }

    /// The OS's name, from `/etc/os-release`.
    pub fn os(&self) -> String {
        self.read("/etc/os-release")
            .or_else(|| self.read("/usr/lib/os-release"))
            .and_then(|text| os_release_name(&text))
            .unwrap_or_else(|| std::env::consts::OS.to_owned())
    }

    /// This host's addresses (not loopback), IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .read("/proc/net/fib_trie")
            .map(|t| local_ipv4(&t))
            .unwrap_or_default()
            .into_iter()
            .map(IpAddr::V4)
            .collect();
        out.extend(
            self.read("/proc/net/if_inet6")
                .map(|t| local_ipv6(&t))
                .unwrap_or_default()
                .into_iter()
                .map(IpAddr::V6),
        );
        out
    }

    /// The asset this host is: named as the agent was enrolled (`enrolled_as`), with
    /// the host's own name beside it.
    fn asset(&self, enrolled_as: &str) -> Asset {
        let ip = self
            .addresses()
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let os = self.os().chars().take(200).collect();
        Asset {
            hostname: enrolled_as.trim().chars().take(253).collect(),
            ip: ip.to_string().into(),
            os,
            open_ports: Vec::new(),
            listeners: Vec::new(),
            os_hostname: Some(self.hostname().chars().take(253).collect()),
            software: Vec::new(),
        }
    }
}

/// Runs `scenario` on `host` within `budget`, reporting the host as `enrolled_as`.
pub fn run(scenario: Scenario, host: &Host, enrolled_as: &str, budget: Budget) -> ScanResults {
    let mut asset = host.asset(enrolled_as);
    let mut findings = Vec::new();
    match scenario {
        Scenario::Inventory => {
            let addresses: Vec<String> = host.addresses().iter().map(ToString::to_string).collect();
            findings.push(Finding {
                severity: Severity::Info,
                title: "Host inventory".into(),
                asset_hostname: Some(asset.hostname.clone()),
                detail: Some(
                    format!(
                        "OS: {}; addresses: {}",
                        asset.os,
                        if addresses.is_empty() {
                            "none but loopback".to_owned()
                        } else {
                            addresses.join(", ")
                        }
                    )
                    .into(),
                ),
            });
        }
        Scenario::Ports => {
            let listeners = listeners(host);
            // Only what other hosts can reach is a finding: telnet on loopback is not
            // a clear-text password on the network.
            let ports = Listener::reachable_ports(&listeners);
            for port in &ports {
                if let Some((severity, why)) = risky_port(*port) {
                    findings.push(Finding {
                        severity,
                        title: format!("Port {port} is listening ({why})").into(),
                        asset_hostname: Some(asset.hostname.clone()),
                        detail: None,
                    });
                }
            }
            asset.open_ports = ports;
            asset.listeners = listeners;
        }
        Scenario::Software => {
            asset.software = installed_software(host, budget);
        }
        Scenario::Compliance => {
            findings = compliance(host, &asset.hostname, budget);
        }
    }
    if budget.over() {
        findings.push(Finding {
            severity: Severity::Info,
            title: "Scan stopped at its time limit; results are partial".into(),
            asset_hostname: Some(asset.hostname.clone()),
            detail: None,
        });
    }
    let mut assets = vec![asset];
    // One host is one asset, so a cap of one or more always fits; kept for the rule.
    if let Some(max) = budget.max_assets {
        assets.truncate(max.get() as usize);
    }
    ScanResults { assets, findings }
}

/// `PRETTY_NAME` (else `NAME VERSION_ID`) of an os-release file.
pub fn os_release_name(text: &str) -> Option<String> {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(value.trim().trim_matches('"').trim_matches('\'').to_owned())
        })
    };
    field("PRETTY_NAME").filter(|v| !v.is_empty()).or_else(|| {
        let name = field("NAME")?;
        Some(match field("VERSION_ID") {
            Some(v) => format!("{name} {v}"),
            None => name,
        })
    })
}

/// The host's own IPv4 addresses: the `/32 host LOCAL` leaves of `/proc/net/fib_trie`.
pub fn local_ipv4(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut out = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let line = line.trim();
        if let Some(addr) = line
            .strip_prefix("|-- ")
            .or_else(|| line.strip_prefix("+-- "))
        {
            last = addr.split('/').next().and_then(|a| a.parse().ok());
        } else if line.contains("host LOCAL")
            && let Some(addr) = last
            && !addr.is_loopback()
        {
            out.insert(addr);
        }
    }
    out.into_iter().collect()
}

/// The host's global IPv6 addresses from `/proc/net/if_inet6` (not loopback or
/// link-local).
pub fn local_ipv6(if_inet6: &str) -> Vec<Ipv6Addr> {
    if_inet6
        .lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            let bits = u128::from_str_radix(hex, 16).ok()?;
            let addr = Ipv6Addr::from(bits);
            let link_local = (addr.segments()[0] & 0xffc0) == 0xfe80;
            (!addr.is_loopback() && !link_local).then_some(addr)
        })
        .collect()
}

/// The tables of listening sockets: TCP in state LISTEN (`0A`), UDP bound with no peer
/// (`07`).
const SOCKET_TABLES: [(&str, Protocol, &str); 4] = [
    ("/proc/net/tcp", Protocol::Tcp, "0A"),
    ("/proc/net/tcp6", Protocol::Tcp, "0A"),
    ("/proc/net/udp", Protocol::Udp, "07"),
    ("/proc/net/udp6", Protocol::Udp, "07"),
];

/// Every socket this host listens on, from `/proc/net/{tcp,tcp6,udp,udp6}`, with the
/// owning process where this user may see it; sorted by protocol, port and address,
/// each `(protocol, port, address)` once (`SO_REUSEPORT` sockets repeat them).
pub fn listeners(host: &Host) -> Vec<Listener> {
    let owners = socket_owners(host);
    let mut seen: BTreeMap<(Protocol, u32, IpAddr), Option<&String>> = BTreeMap::new();
    for (file, protocol, state) in SOCKET_TABLES {
        let Some(text) = host.read(file) else {
            continue;
        };
        for socket in proc_net_sockets(&text, state) {
            let process = owners.get(&socket.inode);
            let entry = seen
                .entry((protocol, socket.port, socket.address))
                .or_insert(process);
            if entry.is_none() {
                *entry = process;
            }
        }
    }
    seen.into_iter()
        .take(MAX_LISTENERS)
        .map(|((protocol, port, address), process)| Listener {
            port,
            protocol,
            address: address.to_string().into(),
            // The server's bound: 1-200 characters.
            process: process
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.chars().take(200).collect()),
        })
        .collect()
}

/// One socket of a `/proc/net/*` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    /// The local port.
    pub port: u32,
    /// The local address.
    pub address: IpAddr,
    /// The socket's inode, which `/proc/<pid>/fd/*` links name as `socket:[inode]`.
    pub inode: u64,
}

/// The sockets in `state` of one `/proc/net/{tcp,tcp6,udp,udp6}` table, skipping lines
/// that do not parse and port 0 (a UDP socket not yet bound).
pub fn proc_net_sockets(table: &str, state: &str) -> Vec<Socket> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (local, st, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
            if !st.eq_ignore_ascii_case(state) {
                return None;
            }
            let (address, port) = local.rsplit_once(':')?;
            let port = u32::from_str_radix(port, 16).ok()?;
            (1..=65_535).contains(&port).then_some(())?;
            Some(Socket {
                port,
                address: proc_net_address(address)?,
                inode: inode.parse().ok()?,
            })
        })
        .collect()
}

/// An address as the kernel prints it in `/proc/net/*`: the bytes in network order
/// read as native 32-bit words, each printed as `%08X`. On the little-endian machines
/// this agent runs on that is one little-endian word for IPv4 (`0100007F` is
/// 127.0.0.1) and four for IPv6.
pub fn proc_net_address(hex: &str) -> Option<IpAddr> {
    let word = |w: &str| u32::from_str_radix(w, 16).ok().map(u32::to_le_bytes);
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// The inode of a `/proc/<pid>/fd/*` link's target, when it is a socket
/// (`socket:[12345]`).
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Socket inode → the name (`comm`) of a process holding it, over every process whose
/// descriptors this user may read; the others (another user's, without root) are
/// skipped: an owner is reported where it is allowed, never guessed.
pub fn socket_owners(host: &Host) -> HashMap<u64, String> {
    let mut owners = HashMap::new();
    let Ok(procs) = std::fs::read_dir(host.path("/proc")) else {
        return owners;
    };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(host.path(&format!("/proc/{pid}/fd"))) else {
            continue;
        };
        let Some(comm) = host.read(&format!("/proc/{pid}/comm")) else {
            continue;
        };
        let comm = comm.trim().to_owned();
        for fd in fds.flatten() {
            if let Some(inode) = std::fs::read_link(fd.path())
                .ok()
                .and_then(|target| socket_inode(&target.to_string_lossy()))
            {
                owners.entry(inode).or_insert_with(|| comm.clone());
            }
        }
    }
    owners
}

fn risky_port(port: u32) -> Option<(Severity, &'static str)> {
    Some(match port {
        23 => (Severity::High, "telnet sends credentials in clear text"),
        21 => (Severity::Medium, "FTP sends credentials in clear text"),
        513 | 514 => (
            Severity::High,
            "r-services trust addresses, not credentials",
        ),
        111 => (Severity::Low, "rpcbind exposes RPC services"),
        _ => return None,
    })
}

/// Installed packages: dpkg's status file, else rpm's database (through `rpm -qa`).
pub fn installed_software(host: &Host, budget: Budget) -> Vec<Software> {
    if let Some(status) = host.read("/var/lib/dpkg/status") {
        return dpkg_installed(&status);
    }
    if budget.over() || !host.path("/var/lib/rpm").exists() {
        return Vec::new();
    }
    std::process::Command::new("rpm")
        .args(["-qa", "--qf", "%{NAME}\\t%{VERSION}-%{RELEASE}\\n"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| rpm_installed(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

fn software(name: &str, version: &str) -> Software {
    // The server's bounds: name 1-200, version at most 100 characters.
    Software {
        name: name.chars().take(200).collect(),
        version: version.chars().take(100).collect(),
    }
}

/// The installed packages of a dpkg status file (stanzas whose `Status` ends in
/// `installed`), sorted by name.
pub fn dpkg_installed(status: &str) -> Vec<Software> {
    let mut out: Vec<Software> = status
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |key: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(key)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(str::trim)
                })
            };
            let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
            let name = field("Package").filter(|n| !n.is_empty())?;
            installed.then(|| software(name, field("Version").unwrap_or_default()))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n'` output, sorted by name.
pub fn rpm_installed(listing: &str) -> Vec<Software> {
    let mut out: Vec<Software> = listing
        .lines()
        .filter_map(|l| {
            let (name, version) = l.split_once('\t')?;
            (!name.trim().is_empty()).then(|| software(name.trim(), version.trim()))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The value sshd uses for a keyword: its first occurrence, reading `configs` in the
/// order sshd does (the `Include`d drop-ins, then the rest of the main file).
pub fn sshd_setting(configs: &[String], keyword: &str) -> Option<String> {
    configs.iter().find_map(|text| {
        text.lines().find_map(|line| {
            let line = line.trim();
            let mut words = line.split_whitespace();
            let key = words.next()?;
            (key.eq_ignore_ascii_case(keyword) && !line.starts_with('#'))
                .then(|| words.next().unwrap_or_default().to_ascii_lowercase())
        })
    })
}

/// The local compliance checks (documented in README.md):
/// - sshd `PermitRootLogin yes` (high) and `PasswordAuthentication yes` (medium);
/// - world-writable regular files under `/etc` (high, one finding each, at most 20);
/// - `/etc/shadow` readable by others (critical);
/// - and an info finding listing what was checked.
pub fn compliance(host: &Host, hostname: &str, budget: Budget) -> Vec<Finding> {
    use std::os::unix::fs::PermissionsExt as _;
    let finding = |severity, title: String, detail: Option<String>| Finding {
        severity,
        title: title.into(),
        asset_hostname: Some(hostname.into()),
        detail: detail.map(Text::from),
    };
    let mut findings = Vec::new();
    let mut checked = Vec::new();

    // Drop-ins first: sshd reads `Include sshd_config.d/*.conf` at the top of the
    // Debian file, and the first value of a keyword wins.
    let mut configs = Vec::new();
    if let Ok(dir) = std::fs::read_dir(host.path("/etc/ssh/sshd_config.d")) {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        configs.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    configs.extend(host.read("/etc/ssh/sshd_config"));
    if configs.is_empty() {
        checked.push("sshd: not configured on this host".to_owned());
    } else {
        checked.push("sshd PermitRootLogin, PasswordAuthentication".to_owned());
        if sshd_setting(&configs, "PermitRootLogin").as_deref() == Some("yes") {
            findings.push(finding(
                Severity::High,
                "sshd permits root login with a password".into(),
                Some("PermitRootLogin yes; use prohibit-password or no".into()),
            ));
        }
        // OpenSSH's default is yes.
        if sshd_setting(&configs, "PasswordAuthentication").is_none_or(|v| v == "yes") {
            findings.push(finding(
                Severity::Medium,
                "sshd accepts password authentication".into(),
                Some(
                    "PasswordAuthentication is yes (or unset: the default is yes); prefer keys"
                        .into(),
                ),
            ));
        }
    }

    checked.push("world-writable files in /etc".to_owned());
    let mut writable = Vec::new();
    let mut stack = vec![host.path("/etc")];
    while let Some(dir) = stack.pop() {
        if budget.over() {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // symlink_metadata: never follow a link out of /etc.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && meta.permissions().mode() & 0o002 != 0 {
                writable.push(entry.path());
            }
        }
    }
    writable.sort();
    for path in writable.iter().take(20) {
        let shown = Path::new("/").join(path.strip_prefix(&host.root).unwrap_or(path));
        findings.push(finding(
            Severity::High,
            format!("World-writable file {}", shown.display()),
            Some("any local user can change it; chmod o-w".into()),
        ));
    }

    checked.push("/etc/shadow permissions".to_owned());
    if let Ok(meta) = std::fs::metadata(host.path("/etc/shadow"))
        && meta.permissions().mode() & 0o004 != 0
    {
        findings.push(finding(
            Severity::Critical,
            "/etc/shadow is readable by every user".into(),
            Some("password hashes are exposed; chmod 640 or stricter".into()),
        ));
    }

    findings.push(finding(
        Severity::Info,
        "Compliance checks run".into(),
        Some(checked.join("; ")),
    ));
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn budget() -> Budget {
        Budget {
            deadline: Instant::now() + Duration::from_secs(60),
            max_assets: None,
        }
    }

    #[test]
    fn os_release_pretty_name_or_name_and_version() {
        assert_eq!(
            os_release_name(
                "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
            )
            .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            os_release_name("NAME=Alpine\nVERSION_ID=3.19\n").as_deref(),
            Some("Alpine 3.19")
        );
        assert_eq!(os_release_name("ID=x\n"), None);
    }

    /// Lines as the kernel writes them (columns up to `inode`), one state per table.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 102 1 0000000000000000 100 0 0 10 0\n\
   2: 0500000A:D2A4 0500000A:0016 01 00000000:00000000 00:00000000 00000000  1000        0 103 1 0000000000000000 20 4 30 10 -1\n\
   3: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 104 1 0000000000000000 100 0 0 10 5\n";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 201 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 202 1 0000000000000000 100 0 0 10 0\n\
   2: 0000000000000000FFFF00000100007F:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 203 1 0000000000000000 100 0 0 10 0\n\
   3: B80D0120000000000000000005000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 204 1 0000000000000000 100 0 0 10 0\n";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  100: 0500000A:0202 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 301 2 0000000000000000 0\n\
  101: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 302 2 0000000000000000 0\n\
  102: 0500000A:D431 0800080A:0035 01 00000000:00000000 00:00000000 00000000  1000        0 303 2 0000000000000000 0\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn kernel_addresses_are_little_endian_words() {
        assert_eq!(proc_net_address("0100007F"), Some(ip("127.0.0.1")));
        assert_eq!(proc_net_address("00000000"), Some(ip("0.0.0.0")));
        assert_eq!(proc_net_address("0500000A"), Some(ip("10.0.0.5")));
        assert_eq!(
            proc_net_address("00000000000000000000000000000000"),
            Some(ip("::"))
        );
        assert_eq!(
            proc_net_address("00000000000000000000000001000000"),
            Some(ip("::1"))
        );
        assert_eq!(
            proc_net_address("0000000000000000FFFF00000100007F"),
            Some(ip("::ffff:127.0.0.1"))
        );
        assert_eq!(
            proc_net_address("B80D0120000000000000000005000000"),
            Some(ip("2001:db8::5"))
        );
        assert_eq!(proc_net_address("0100007"), None);
        assert_eq!(proc_net_address("zz00007F"), None);
    }

    #[test]
    fn listening_sockets_from_proc_net() {
        let sockets = proc_net_sockets(TCP, "0A");
        assert_eq!(
            sockets,
            [
                Socket {
                    port: 22,
                    address: ip("0.0.0.0"),
                    inode: 101
                },
                Socket {
                    port: 5432,
                    address: ip("127.0.0.1"),
                    inode: 102
                },
                Socket {
                    port: 53,
                    address: ip("127.0.0.53"),
                    inode: 104
                },
            ]
        );
        let v6: Vec<_> = proc_net_sockets(TCP6, "0A")
            .into_iter()
            .map(|s| (s.port, s.address.to_string()))
            .collect();
        assert_eq!(
            v6,
            [
                (22, "::".to_owned()),
                (5432, "::1".into()),
                (631, "::ffff:127.0.0.1".into()),
                (443, "2001:db8::5".into())
            ]
        );
        // Connected UDP sockets and an unbound one (port 0) are not listeners.
        let udp = proc_net_sockets(UDP, "07");
        assert_eq!(
            udp,
            [Socket {
                port: 514,
                address: ip("10.0.0.5"),
                inode: 301
            }]
        );
    }

    #[test]
    fn listeners_of_a_fixture_host_with_their_processes() {
        let root =
            std::env::temp_dir().join(format!("fleetpass-agent-listeners-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("proc/net")).unwrap();
        std::fs::write(root.join("proc/net/tcp"), TCP).unwrap();
        std::fs::write(root.join("proc/net/tcp6"), TCP6).unwrap();
        std::fs::write(root.join("proc/net/udp"), UDP).unwrap();
        // Process 7 holds sshd's IPv4 socket and postgres's; 8's descriptors cannot
        // be listed (another user's), so its socket has no process.
        std::fs::create_dir_all(root.join("proc/7/fd")).unwrap();
        std::fs::write(root.join("proc/7/comm"), "sshd\n").unwrap();
        std::os::unix::fs::symlink("socket:[101]", root.join("proc/7/fd/3")).unwrap();
        std::os::unix::fs::symlink("/dev/null", root.join("proc/7/fd/0")).unwrap();
        std::fs::create_dir_all(root.join("proc/9/fd")).unwrap();
        std::fs::write(root.join("proc/9/comm"), "postgres\n").unwrap();
        std::os::unix::fs::symlink("socket:[102]", root.join("proc/9/fd/5")).unwrap();
        std::fs::create_dir_all(root.join("proc/8")).unwrap();
        std::fs::write(root.join("proc/8/comm"), "secret\n").unwrap();
        let host = Host { root: root.clone() };
        let found: Vec<_> = listeners(&host)
            .into_iter()
            .map(|l| {
                (
                    l.protocol.as_str(),
                    l.port,
                    l.address.to_string(),
                    l.process.map(|p| p.to_string()),
                )
            })
            .collect();
        let tcp = |port, address: &str, process: Option<&str>| {
            ("tcp", port, address.to_owned(), process.map(str::to_owned))
        };
        assert_eq!(
            found,
            [
                tcp(22, "0.0.0.0", Some("sshd")),
                tcp(22, "::", None),
                tcp(53, "127.0.0.53", None),
                tcp(443, "2001:db8::5", None),
                tcp(631, "::ffff:127.0.0.1", None),
                tcp(5432, "127.0.0.1", Some("postgres")),
                tcp(5432, "::1", None),
                ("udp", 514, "10.0.0.5".to_owned(), None),
            ]
        );
        let results = run(Scenario::Ports, &host, "scanner-01", budget());
        let asset = &results.assets[0];
        assert_eq!(asset.open_ports, [22, 443, 514]);
        assert_eq!(asset.hostname.as_str(), "scanner-01");
        assert_eq!(results.validate(None), Ok(()));
        assert_eq!(results.report().counts.loopback_only_ports, 3);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn socket_links_name_their_inode() {
        assert_eq!(socket_inode("socket:[40213]"), Some(40_213));
        assert_eq!(socket_inode("pipe:[40213]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn addresses_from_fib_trie_and_if_inet6() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 10.0.0.0/24 2 0 2\n        |-- 10.0.0.5\n           /32 host LOCAL\n        |-- 10.0.0.255\n           /32 link BROADCAST\n     |-- 127.0.0.1\n        /32 host LOCAL\n";
        assert_eq!(local_ipv4(trie), [Ipv4Addr::new(10, 0, 0, 5)]);
        let inet6 = "00000000000000000000000000000001 01 80 10 80       lo\nfe800000000000000000000000000001 02 40 20 80     eth0\n20010db8000000000000000000000005 02 40 00 80     eth0\n";
        assert_eq!(
            local_ipv6(inet6),
            ["2001:db8::5".parse::<Ipv6Addr>().unwrap()]
        );
    }

    #[test]
    fn installed_packages_from_dpkg_and_rpm() {
        let status = "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n";
        let names: Vec<_> = dpkg_installed(status)
            .into_iter()
            .map(|s| (s.name.to_string(), s.version.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("bash".to_owned(), "5.2.15-2+b2".to_owned()),
                ("zlib1g".into(), "1:1.2.13".into())
            ]
        );
        assert_eq!(rpm_installed("openssl\t3.0.7-1.el9\n").len(), 1);
    }

    #[test]
    fn sshd_first_value_wins_and_comments_are_ignored() {
        let configs = vec![
            "# PermitRootLogin yes\nPasswordAuthentication no\n".to_owned(),
            "PermitRootLogin yes\nPasswordAuthentication yes\n".to_owned(),
        ];
        assert_eq!(
            sshd_setting(&configs, "permitrootlogin").as_deref(),
            Some("yes")
        );
        assert_eq!(
            sshd_setting(&configs, "PasswordAuthentication").as_deref(),
            Some("no")
        );
    }

    #[test]
    fn compliance_on_a_fixture_tree_finds_what_is_wrong() {
        use std::os::unix::fs::PermissionsExt as _;
        let root =
            std::env::temp_dir().join(format!("fleetpass-agent-host-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
        std::fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin yes\n").unwrap();
        std::fs::write(root.join("etc/motd"), "hi").unwrap();
        std::fs::set_permissions(
            root.join("etc/motd"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        std::fs::write(root.join("etc/shadow"), "root:*:").unwrap();
        std::fs::set_permissions(
            root.join("etc/shadow"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let host = Host { root: root.clone() };
        let results = run(Scenario::Compliance, &host, "h", budget());
        let titles: Vec<_> = results
            .findings
            .iter()
            .map(|f| (f.severity, f.title.as_str()))
            .collect();
        assert!(
            titles.contains(&(Severity::High, "sshd permits root login with a password")),
            "{titles:?}"
        );
        assert!(titles.contains(&(Severity::Medium, "sshd accepts password authentication")));
        assert!(
            titles.contains(&(Severity::High, "World-writable file /etc/motd")),
            "{titles:?}"
        );
        assert!(titles.contains(&(Severity::Critical, "/etc/shadow is readable by every user")));
        assert_eq!(results.validate(None), Ok(()));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn every_scenario_on_this_host_is_valid_for_the_server() {
        for scenario in [
            Scenario::Inventory,
            Scenario::Ports,
            Scenario::Software,
            Scenario::Compliance,
        ] {
            let results = run(scenario, &Host::default(), "enrolled-name", budget());
            assert_eq!(
                results.validate(MaxAssets::new(1).ok()),
                Ok(()),
                "{scenario:?}"
            );
            assert_eq!(results.assets.len(), 1);
        }
    }

    #[test]
    fn a_spent_budget_marks_results_partial() {
        let spent = Budget {
            deadline: Instant::now(),
            max_assets: None,
        };
        let results = run(Scenario::Compliance, &Host::default(), "h", spent);
        assert!(
            results
                .findings
                .iter()
                .any(|f| f.title.contains("time limit"))
        );
    }
}
