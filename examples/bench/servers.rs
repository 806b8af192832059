//! Starting and stopping the two systems under test on 127.0.0.1, each in its own
//! temp dir, and reading what they cost (RSS from /proc, bytes on disk).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Watermeter,
    Influx,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Watermeter => "watermeter",
            Kind::Influx => "influxdb",
        }
    }
}

/// What a fresh server is started with.
#[derive(Debug, Clone)]
pub struct Setup {
    pub meters: Vec<String>,
    /// `(m³, RFC 3339)`: the meter reading of the first meter (watermeter only).
    pub reading: Option<(f64, String)>,
}

pub struct Server {
    pub kind: Kind,
    child: Option<Child>,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub root: PathBuf,
    config: PathBuf,
    wm_bin: PathBuf,
}

fn free_ports() -> Result<(u16, u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    let u = UdpSocket::bind("127.0.0.1:0")?;
    Ok((
        a.local_addr()?.port(),
        b.local_addr()?.port(),
        u.local_addr()?.port(),
    ))
}

impl Server {
    /// Starts a fresh server with an empty store under `scratch`.
    pub fn start(kind: Kind, setup: &Setup, scratch: &Path, wm_bin: &Path) -> Result<Server> {
        let root = tempfile::Builder::new()
            .prefix(kind.name())
            .tempdir_in(scratch)?
            .keep();
        let (http, rpc, udp) = free_ports()?;
        let config = root.join("config.toml");
        let text = match kind {
            Kind::Influx => influx_config(&root, http, rpc, udp),
            Kind::Watermeter => watermeter_config(&root, http, udp, setup),
        };
        std::fs::write(&config, text)?;
        let mut server = Server {
            kind,
            child: None,
            http: SocketAddr::from(([127, 0, 0, 1], http)),
            udp: SocketAddr::from(([127, 0, 0, 1], udp)),
            root,
            config,
            wm_bin: wm_bin.to_path_buf(),
        };
        server.spawn()?;
        if kind == Kind::Influx {
            crate::client::influx_query(&server, "CREATE DATABASE bench")?;
        }
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.root.join("server.log"))?;
        let child = match self.kind {
            Kind::Influx => Command::new("influxd")
                .arg("-config")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting influxd (apt-get install influxdb)")?,
            Kind::Watermeter => Command::new(&self.wm_bin)
                .args(["serve", "--config"])
                .arg(&self.config)
                .env("WATERMETER_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting watermeter")?,
        };
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/ping", self.http);
        while Instant::now() < deadline {
            if let Ok(r) = crate::client::agent().get(&url).call() {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                let mut log = String::new();
                let _ = std::fs::File::open(self.root.join("server.log"))
                    .and_then(|mut f| f.read_to_string(&mut log));
                bail!("{} exited with {status}:\n{log}", self.kind.name());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{} did not answer /ping within 60 s", self.kind.name())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Stops (SIGTERM, waits) and starts again on the same data.
    pub fn restart(&mut self) -> Result<()> {
        self.terminate();
        self.spawn()
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: sending a signal to our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `VmRSS` and `VmHWM` (peak) in bytes.
    pub fn rss(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU seconds the whole server used so far (user + system, all threads).
    pub fn cpu_seconds(&self) -> f64 {
        self.thread_cpu().iter().map(|(_, u, k)| u + k).sum()
    }

    /// CPU seconds used so far, (user, system), summed per thread name (a rough
    /// profile: which thread did the work, and how much of it was in the kernel).
    pub fn thread_cpu(&self) -> Vec<(String, f64, f64)> {
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let mut out: Vec<(String, f64, f64)> = Vec::new();
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()));
        for t in tasks.into_iter().flatten().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // Fields after the ")" of the name: state is the 1st, utime the 12th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<f64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0))
                .collect();
            let (user, sys) = (f.get(11).copied(), f.get(12).copied());
            let (Some(user), Some(sys)) = (user, sys) else {
                continue;
            };
            let name = comm.trim().to_string();
            match out.iter_mut().find(|(n, _, _)| *n == name) {
                Some(e) => {
                    e.1 += user / tick;
                    e.2 += sys / tick;
                }
                None => out.push((name, user / tick, sys / tick)),
            }
        }
        out.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
        out
    }

    /// Bytes the store takes on disk (allocated blocks, like `du`).
    pub fn disk_bytes(&self) -> u64 {
        let dirs: &[&str] = match self.kind {
            Kind::Influx => &["data", "wal"],
            Kind::Watermeter => &["data"],
        };
        dirs.iter().map(|d| du(&self.root.join(d))).sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// InfluxDB only: bytes of the compacted TSM files alone (what its docs quote),
/// without the index, series files and WAL that `disk_bytes` counts.
pub fn tsm_bytes(root: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(p) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    walk(&path)
                } else if path.extension().is_some_and(|x| x == "tsm") {
                    e.metadata().map_or(0, |m| m.len())
                } else {
                    0
                }
            })
            .sum()
    }
    walk(&root.join("data"))
}

fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            total += entries.flatten().map(|e| du(&e.path())).sum::<u64>();
        }
    }
    total
}

fn influx_config(root: &Path, http: u16, rpc: u16, udp: u16) -> String {
    let r = root.display();
    // Short cold durations so that "after compaction" is reached within seconds;
    // the UDP read buffer is asked as large as watermeter's (the kernel caps both
    // at net.core.rmem_max unless the process may force it).
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{r}/meta"
  logging-enabled = false
[data]
  dir = "{r}/data"
  wal-dir = "{r}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "5s"
  compact-full-write-cold-duration = "10s"
[retention]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "error"
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[[udp]]
  enabled = true
  bind-address = "127.0.0.1:{udp}"
  database = "bench"
  read-buffer = 8388608
"#
    )
}

fn watermeter_config(root: &Path, http: u16, udp: u16, setup: &Setup) -> String {
    let mut text = format!(
        "data_dir = \"{}/data\"\ntimezone = \"Europe/Vienna\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[udp]\nlisten = \"127.0.0.1:{udp}\"\nprecision = \"ns\"\n",
        root.display()
    );
    for (i, id) in setup.meters.iter().enumerate() {
        text.push_str(&format!("\n[[meter]]\nid = \"{id}\"\n"));
        if let (0, Some((m3, at))) = (i, &setup.reading) {
            text.push_str(&format!(
                "initial_reading_m3 = {m3:?}\nreading_set_at = \"{at}\"\n"
            ));
        }
    }
    text
}
