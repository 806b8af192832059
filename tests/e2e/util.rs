//! Test helpers: the real binary on port 0 with a temp data dir, and tiny HTTP/UDP clients.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_watermeter");

/// The running apps' process ids by dashboard address, so that a request that
/// times out can show where the server was stuck.
static PIDS: Mutex<Option<HashMap<SocketAddr, u32>>> = Mutex::new(None);

fn register(http: SocketAddr, pid: Option<u32>) {
    let mut pids = PIDS.lock().unwrap_or_else(|p| p.into_inner());
    let map = pids.get_or_insert_with(HashMap::new);
    match pid {
        Some(pid) => map.insert(http, pid),
        None => map.remove(&http),
    };
}

/// Prints every thread's stack of the app serving `url` (with gdb, when the machine
/// has it): a request that hangs is a bug, and this is where to start.
fn dump_stacks(url: &str) {
    let pid = PIDS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|m| {
            m.iter()
                .find(|(a, _)| url.contains(&format!("//{a}/")))
                .map(|(_, p)| *p)
        });
    let Some(pid) = pid else { return };
    let out = Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output();
    match out {
        Ok(o) => eprintln!(
            "stacks of watermeter (pid {pid}) serving {url}:\n{}",
            String::from_utf8_lossy(&o.stdout)
        ),
        Err(e) => eprintln!("could not run gdb to show where pid {pid} is stuck: {e}"),
    }
}

/// A running `watermeter serve` with its own data directory.
pub struct App {
    pub child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
}

/// The config every test starts from; `extra` is appended (more tables).
pub fn config_text(data_dir: &Path, timezone: &str, extra: &str) -> String {
    format!(
        r#"data_dir = "{}"
timezone = "{timezone}"

[http]
listen = "127.0.0.1:0"

[udp]
listen = "127.0.0.1:0"

{extra}"#,
        data_dir.display()
    )
}

pub const MAIN_METER: &str = "[[meter]]\nid = \"main\"\nname = \"House\"\n";

impl App {
    /// Starts the binary with a fresh temp dir and `MAIN_METER` unless `extra` has meters.
    pub fn start(timezone: &str, extra: &str) -> (App, tempfile::TempDir) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let extra = if extra.contains("[[meter]]") {
            extra.to_string()
        } else {
            format!("{MAIN_METER}{extra}")
        };
        let config = tmp.path().join("config.toml");
        std::fs::write(
            &config,
            config_text(&tmp.path().join("data"), timezone, &extra),
        )
        .expect("write config");
        (App::start_with(&config, tmp.path()), tmp)
    }

    /// Starts (or restarts) the binary on an existing config.
    pub fn start_with(config: &Path, dir: &Path) -> App {
        App::spawn(config, dir, Stdio::inherit())
    }

    /// The same, with the log (stderr) appended to `log` for the test to read.
    pub fn start_logged(config: &Path, dir: &Path, log: &Path) -> App {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log file");
        App::spawn(config, dir, Stdio::from(file))
    }

    /// The same, with extra environment variables (e.g. an `LD_PRELOAD`).
    pub fn spawn_with_env(config: &Path, dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> App {
        App::spawn_env(config, dir, Stdio::inherit(), env)
    }

    fn spawn(config: &Path, dir: &Path, stderr: Stdio) -> App {
        App::spawn_env(config, dir, stderr, &[])
    }

    fn spawn_env(
        config: &Path,
        dir: &Path,
        stderr: Stdio,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> App {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("WATERMETER_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start watermeter");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut http, mut udp) = (None, None);
        // A long power-cut run rebuilds a large index at every start: it says how
        // long a start may take (the unit's own limit is 5 minutes).
        let start_secs = std::env::var("WATERMETER_TEST_START_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        let deadline = Instant::now() + Duration::from_secs(start_secs);
        while http.is_none() || udp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("watermeter did not announce its ports"));
            if let Some(a) = line.strip_prefix("watermeter: dashboard at http://") {
                http = Some(a.trim_end_matches('/').parse().expect("http addr"));
            }
            if let Some(a) = line.strip_prefix("watermeter: line protocol over UDP on ") {
                udp = Some(a.parse().expect("udp addr"));
            }
        }
        let http = http.expect("http addr");
        register(http, Some(child.id()));
        App {
            child,
            http,
            udp: udp.unwrap(),
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the clean shutdown path.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait")
    }

    pub fn restart(self) -> App {
        let (config, dir) = (self.config.clone(), self.dir.clone());
        self.kill();
        App::start_with(&config, &dir)
    }

    pub fn meter_json(&self, id: &str) -> serde_json::Value {
        get_json(&self.url(&format!("/api/v1/meters/{id}")))
    }

    pub fn total_liters(&self, id: &str) -> f64 {
        self.meter_json(id)["total_liters"]
            .as_f64()
            .expect("total_liters")
    }

    /// Polls until the meter's total reaches `liters` or `timeout` passes; returns the last total.
    pub fn wait_total(&self, id: &str, liters: f64, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.total_liters(id);
            if (t - liters).abs() < 1e-9 || Instant::now() > deadline {
                return t;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn send_udp(&self, datagram: &str) {
        let s = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        s.send_to(datagram.as_bytes(), self.udp).expect("udp send");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        register(self.http, None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn answer(url: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut r = match r {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, ureq::Error::Timeout(_)) {
                dump_stacks(url);
            }
            panic!("http request {url}: {e}");
        }
    };
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    Answer {
        status: r.status().as_u16(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
        headers,
    }
}

pub fn post(url: &str, body: &str) -> Answer {
    answer(url, agent().post(url).send(body))
}

/// A POST of a JSON body, as scripts send it (`Content-Type: application/json`).
pub fn post_json(url: &str, body: &str) -> Answer {
    answer(
        url,
        agent()
            .post(url)
            .header("Content-Type", "application/json")
            .send(body),
    )
}

pub fn get(url: &str) -> Answer {
    answer(url, agent().get(url).call())
}

pub fn get_json(url: &str) -> serde_json::Value {
    let a = get(url);
    assert_eq!(a.status, 200, "GET {url}: {}", a.body);
    serde_json::from_str(&a.body).expect("json")
}

/// Runs the binary with arguments; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("WATERMETER_LOG", "warn")
        .output()
        .expect("run watermeter");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `serve` on a config it is expected to refuse, with logging off so that stderr
/// holds only the error; returns (exit code, stderr).
pub fn serve_refused(config: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("WATERMETER_LOG", "off")
        .output()
        .expect("run watermeter serve");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` one-liter points with distinct timestamps (seconds from `first_s`), one per line.
pub fn points(first_s: u64, n: u64) -> String {
    let mut body = String::with_capacity(n as usize * 48);
    for i in 0..n {
        body.push_str(&format!("water,meter=main liters=1 {}\n", first_s + i));
    }
    body
}

/// Sends raw bytes on a fresh TCP connection and reads until the server closes it
/// (or 10 s pass); returns what came back, lossily as text.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP answer (0 when there was none).
pub fn raw_status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// POST without panicking on a connection error (the server may be killed meanwhile).
pub fn try_get(url: &str) -> Result<Answer, String> {
    let r = agent().get(url).call().map_err(|e| e.to_string())?;
    Ok(answer(url, Ok(r)))
}

pub fn try_post(url: &str, body: &str) -> Result<Answer, String> {
    let r = agent().post(url).send(body).map_err(|e| e.to_string())?;
    Ok(answer(url, Ok(r)))
}

/// A small seeded xorshift generator for reproducible random test inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Liters the API reports for the whole UTC hours that `[from_s, to_s)` touches.
pub fn liters_between(app: &App, from_s: u64, to_s: u64) -> f64 {
    let t = |s: u64| {
        chrono::DateTime::from_timestamp(s as i64, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let url = app.url(&format!(
        "/api/v1/meters/main/usage?from={}&to={}&step=hour",
        t(from_s),
        t(to_s)
    ));
    get_json(&url)["total_liters"]
        .as_f64()
        .expect("total_liters")
}

/// `s` percent-encoded for a URL query (everything but letters, digits, `-_.`).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
