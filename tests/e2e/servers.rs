//! Real third-party servers for the integration tests (InfluxDB 1.x, Prometheus,
//! mosquitto), each on a free port on 127.0.0.1 with its own temp directory,
//! always stopped by `Drop`. A missing binary fails the test with the fix.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{get, post};

/// The binary `name` from Debian package `package`, or a failure that says how to get it.
pub fn require(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("`{name}` is not installed: run ./test.sh, which installs the Debian package `{package}` (or apt-get install {package})");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child process that is killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    program: PathBuf,
    args: Vec<String>,
}

impl Server {
    fn spawn(program: PathBuf, args: Vec<String>, port: u16, dir: tempfile::TempDir) -> Server {
        let mut s = Server {
            child: None,
            port,
            dir,
            program,
            args,
        };
        s.start();
        s
    }

    /// (Re)starts the process with the same arguments, port and directory.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        self.child = Some(child);
        wait_for_port(
            self.port,
            &self.program.display().to_string(),
            Duration::from_secs(60),
        );
    }

    /// SIGTERM, then SIGKILL if it does not end within 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// InfluxDB 1.x (`influxd`) with a database `water`.
pub fn influxd() -> Server {
    let bin = require("influxd", "influxdb");
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, rpc) = (free_port(), free_port());
    let d = dir.path();
    let config = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
         [meta]\n  dir = \"{m}\"\n\
         [data]\n  dir = \"{data}\"\n  wal-dir = \"{wal}\"\n  query-log-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [continuous_queries]\n  enabled = false\n",
        m = d.join("meta").display(),
        data = d.join("data").display(),
        wal = d.join("wal").display(),
    );
    let path = d.join("influxdb.conf");
    std::fs::write(&path, config).expect("write influxdb.conf");
    let args = vec!["run".into(), "-config".into(), path.display().to_string()];
    let s = Server::spawn(bin, args, port, dir);
    let ok = eventually(Duration::from_secs(30), || {
        (post(&influx_url(&s, "/query?q=CREATE%20DATABASE%20water"), "").status == 200)
            .then_some(())
    });
    assert!(
        ok.is_some(),
        "influxd did not create the database: {}",
        s.log()
    );
    s
}

pub fn influx_url(s: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", s.port)
}

/// The single number an InfluxQL query returns (e.g. a count), if any.
pub fn influx_number(s: &Server, query: &str) -> Option<f64> {
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let a = get(&influx_url(s, &format!("/query?db=water&q={q}")));
    let v: serde_json::Value = serde_json::from_str(&a.body).ok()?;
    v["results"][0]["series"][0]["values"][0][1].as_f64()
}

/// Prometheus scraping `target` every second.
pub fn prometheus(target: std::net::SocketAddr) -> Server {
    let bin = require("prometheus", "prometheus");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: watermeter\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, config).expect("write prometheus.yml");
    let args = vec![
        format!("--config.file={}", path.display()),
        format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let server = Server::spawn(bin, args, port, dir);
    // The port opens before the TSDB is loaded; until then queries answer 503.
    let ready = eventually(Duration::from_secs(60), || {
        (crate::util::get(&format!("http://127.0.0.1:{port}/-/ready")).status == 200).then_some(())
    });
    assert!(
        ready.is_some(),
        "Prometheus never became ready: {}",
        server.log()
    );
    server
}

/// mosquitto on a free port, anonymous, no persistence.
pub fn mosquitto() -> Server {
    mosquitto_with(|_| String::new())
}

/// mosquitto speaking only MQTT over TLS, with a server certificate for 127.0.0.1
/// from a test CA; `ca.pem` is in the server's directory for the client to trust.
pub fn mosquitto_tls() -> Server {
    mosquitto_with(|dir| {
        crate::pki::make_pki(dir);
        // Started as root, mosquitto reads its key after dropping to its own user.
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(dir.to_path_buf(), 0o755), (dir.join("server.key"), 0o644)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .expect("make the key readable");
        }
        format!(
            "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            dir.display()
        )
    })
}

fn mosquitto_with(listener_options: impl FnOnce(&Path) -> String) -> Server {
    let bin = require("mosquitto", "mosquitto");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let options = listener_options(dir.path());
    let path = dir.path().join("mosquitto.conf");
    std::fs::write(
        &path,
        format!("per_listener_settings false\nallow_anonymous true\npersistence false\nlistener {port} 127.0.0.1\n{options}"),
    )
    .expect("write mosquitto.conf");
    Server::spawn(
        bin,
        vec!["-c".into(), path.display().to_string()],
        port,
        dir,
    )
}

/// VictoriaMetrics (Debian's `victoria-metrics`) on a free port, serving https with a
/// server certificate from a test CA (`ca.pem` in its directory) when `tls` is set.
/// Its InfluxDB line protocol endpoint is `/write`; samples are kept for 100 years
/// so old test timestamps are not dropped, and searchable without the usual delay.
pub fn victoria_metrics(tls: bool) -> Server {
    let bin = require("victoria-metrics", "victoria-metrics");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut args = vec![
        format!("-httpListenAddr=127.0.0.1:{port}"),
        format!("-storageDataPath={}", dir.path().join("data").display()),
        "-retentionPeriod=100y".to_string(),
        "-search.latencyOffset=0s".to_string(),
        "-search.disableCache".to_string(),
    ];
    if tls {
        crate::pki::make_pki(dir.path());
        args.push("-tls".into());
        args.push(format!(
            "-tlsCertFile={}",
            dir.path().join("server.pem").display()
        ));
        args.push(format!(
            "-tlsKeyFile={}",
            dir.path().join("server.key").display()
        ));
    }
    Server::spawn(bin, args, port, dir)
}

/// The retained messages under `topics` as (topic, payload), via `mosquitto_sub`.
pub fn retained(port: u16, topics: &[&str]) -> Vec<(String, String)> {
    retained_with(port, topics, &[])
}

/// The same over TLS, trusting `ca`.
pub fn retained_tls(port: u16, ca: &Path, topics: &[&str]) -> Vec<(String, String)> {
    retained_with(port, topics, &["--cafile", &ca.display().to_string()])
}

fn retained_with(port: u16, topics: &[&str], extra: &[&str]) -> Vec<(String, String)> {
    let bin = require("mosquitto_sub", "mosquitto-clients");
    let mut cmd = Command::new(bin);
    cmd.args(extra);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-v",
        "--retained-only",
        "-W",
        "2",
    ]);
    for t in topics {
        cmd.args(["-t", t]);
    }
    let out = cmd.output().expect("run mosquitto_sub");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, p)| (t.to_string(), p.to_string()))
        .collect()
}

/// Publishes one message with `mosquitto_pub` (QoS 1, not retained), as a sensor would.
pub fn publish(port: u16, topic: &str, payload: &str) {
    let bin = require("mosquitto_pub", "mosquitto-clients");
    let out = Command::new(bin)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
        ])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
