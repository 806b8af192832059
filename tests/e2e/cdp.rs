//! Headless Chromium over the DevTools protocol, with just enough WebSocket (RFC
//! 6455: text frames, client masking, no extensions) to send commands and read
//! answers and events. Hand-written so the tests need no WebSocket crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A running headless Chromium and a DevTools session on its first page.
pub struct Browser {
    child: Child,
    ws: TcpStream,
    next_id: u64,
    /// Every event received so far (`{"method": …, "params": …}`), in order.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium; fails with the fix when it is not installed.
    pub fn start() -> Browser {
        let exe = if Path::new(CHROMIUM).exists() {
            CHROMIUM.to_string()
        } else {
            which("chromium").unwrap_or_else(|| {
                panic!("chromium is not installed (looked for {CHROMIUM} and on PATH): run ./test.sh, which installs it")
            })
        };
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {exe} failed ({e}): run ./test.sh, which installs it")
            });
        let port = devtools_port(profile.path());
        let ws = connect_page(port);
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        for domain in ["Page", "Runtime", "Network", "Log"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        b
    }

    /// Sends a command and waits for its answer; panics on a protocol error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        send_frame(&mut self.ws, msg.as_bytes());
        loop {
            let v: Value = serde_json::from_str(&read_message(&mut self.ws)).expect("cdp json");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Navigates (or reloads when `url` is None) and waits for the load event.
    pub fn load(&mut self, url: Option<&str>) {
        let seen = self.events.len();
        match url {
            Some(u) => self.call("Page.navigate", json!({"url": u})),
            None => self.call("Page.reload", json!({})),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.events[seen..]
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            assert!(Instant::now() < deadline, "the page did not load");
            self.eval("1");
        }
    }

    /// Polls `expr` until it is true or `within` passes; returns whether it became true.
    pub fn wait_for(&mut self, expr: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.eval(expr) == Value::Bool(true) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
}

/// Chromium writes its DevTools port into the profile once it listens.
fn devtools_port(profile: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(port) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not open its DevTools port"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens a WebSocket to the first page target.
fn connect_page(port: u16) -> TcpStream {
    let list = crate::util::get_json(&format!("http://127.0.0.1:{port}/json/list"));
    let ws_url = list
        .as_array()
        .and_then(|a| a.iter().find(|t| t["type"] == "page"))
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string();
    let path = ws_url
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .expect("ws path");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect devtools");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: d2F0ZXJtZXRlci10ZXN0cw==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(
        status.contains(" 101 "),
        "websocket upgrade refused: {status}"
    );
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    // The handshake answer is all the reader consumed: frames start after it.
    assert!(r.buffer().is_empty(), "unexpected data after the handshake");
    s
}

fn send_frame(s: &mut TcpStream, payload: &[u8]) {
    let mut frame = vec![0x81u8]; // FIN + text
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xffff {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).expect("send frame");
}

/// Reads one whole (possibly fragmented) text message.
fn read_message(s: &mut TcpStream) -> String {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).expect("read frame");
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).expect("read payload");
        match opcode {
            0x0..=0x2 => message.extend_from_slice(&payload),
            0x8 => panic!("chromium closed the DevTools connection"),
            _ => continue, // ping/pong: Chromium does not need an answer
        }
        if fin {
            return String::from_utf8(message).expect("utf-8 message");
        }
    }
}
