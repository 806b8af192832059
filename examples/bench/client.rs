//! The one client that drives both systems: HTTP `/write` in batches, UDP one
//! point per datagram, and the reads (our JSON API, InfluxQL over `/query`).

use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::servers::{Kind, Server};

pub fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build();
    ureq::Agent::new_with_config(config)
}

/// A workload in memory: the lines, and batches of `batch` lines each.
pub struct Workload {
    pub lines: Vec<Vec<u8>>,
    pub batches: Vec<Vec<u8>>,
}

impl Workload {
    pub fn load(path: &std::path::Path, batch: usize) -> Result<Workload> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let lines: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let batches = lines
            .chunks(batch)
            .map(|c| {
                let mut body = Vec::with_capacity(c.iter().map(|l| l.len() + 1).sum());
                for l in c {
                    body.extend_from_slice(l);
                    body.push(b'\n');
                }
                body
            })
            .collect();
        Ok(Workload { lines, batches })
    }
}

/// Sends every batch to `/write` from `clients` threads (each takes the next
/// unsent batch) and returns points per second, first send to last answer.
pub fn http_ingest(server: &Server, w: &Workload, clients: usize) -> Result<f64> {
    let url = format!("http://{}/write?db=bench&precision=ns", server.http);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let agent = agent();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = w.batches.get(i) else {
                            return Ok(());
                        };
                        let r = agent.post(&url).send(&body[..])?;
                        if r.status().as_u16() != 204 {
                            let status = r.status();
                            let text = r.into_body().read_to_string().unwrap_or_default();
                            bail!("batch {i}: HTTP {status}: {text}");
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| anyhow!("client panicked"))?)
    })?;
    Ok(w.lines.len() as f64 / start.elapsed().as_secs_f64())
}

/// Sends the first `n` lines, one per datagram, at `rate` per second (0: as fast
/// as the socket takes them). Returns the achieved send rate.
pub fn udp_send(server: &Server, w: &Workload, n: usize, rate: u64) -> Result<f64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(server.udp)?;
    let start = Instant::now();
    if rate == 0 {
        send_burst(&socket, &w.lines[..n.min(w.lines.len())])?;
        return Ok(n as f64 / start.elapsed().as_secs_f64());
    }
    for (i, line) in w.lines.iter().take(n).enumerate() {
        if rate > 0 && i % 20 == 0 {
            // Pace in slices of 20 datagrams: never ahead of the schedule.
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            let now = start.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        socket.send(line)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Unpaced from `senders` threads at once, each its own socket and a contiguous
/// share of the first `n` lines: more than one sending core can offer.
pub fn udp_send_parallel(server: &Server, w: &Workload, n: usize, senders: usize) -> Result<f64> {
    let lines = &w.lines[..n.min(w.lines.len())];
    let share = lines.len().div_ceil(senders.max(1));
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = lines
            .chunks(share.max(1))
            .map(|part| {
                scope.spawn(move || -> Result<()> {
                    let socket = UdpSocket::bind("127.0.0.1:0")?;
                    socket.connect(server.udp)?;
                    send_burst(&socket, part)
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow!("a sender thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(lines.len() as f64 / start.elapsed().as_secs_f64())
}

/// Points stored so far (all meters), waiting until the count stops moving.
pub fn settled_count(server: &Server, meters: &[String]) -> Result<u64> {
    let mut last = u64::MAX;
    let mut stable_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = stored_count(server, meters)?;
        if n != last {
            last = n;
            stable_since = Instant::now();
        } else if stable_since.elapsed() > Duration::from_millis(1500) {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn stored_count(server: &Server, meters: &[String]) -> Result<u64> {
    match server.kind {
        Kind::Influx => {
            let v = influx_query(server, "SELECT count(liters) FROM water")?;
            Ok(first_values(&v, 0).first().map_or(0.0, |r| r.1) as u64)
        }
        // Every generated event is one liter, so liters are events.
        Kind::Watermeter => {
            let mut n = 0.0;
            for m in meters {
                n += meter_json(server, m)?["total_liters"]
                    .as_f64()
                    .unwrap_or(0.0);
            }
            Ok(n.round() as u64)
        }
    }
}

pub fn get_json(server: &Server, path_and_query: &str) -> Result<Value> {
    let url = format!("http://{}{path_and_query}", server.http);
    let r = agent().get(&url).call()?;
    let status = r.status();
    let text = r.into_body().read_to_string()?;
    if !status.is_success() {
        bail!("GET {path_and_query}: HTTP {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

pub fn meter_json(server: &Server, meter: &str) -> Result<Value> {
    get_json(server, &format!("/api/v1/meters/{meter}"))
}

/// Runs InfluxQL against the `bench` database; times come back as epoch ms.
pub fn influx_query(server: &Server, q: &str) -> Result<Value> {
    let url = format!("http://{}/query", server.http);
    let r = agent()
        .post(&url)
        .query("db", "bench")
        .query("epoch", "ms")
        .query("q", q)
        .send_empty()?;
    let status = r.status();
    let text = r.into_body().read_to_string()?;
    if !status.is_success() || text.contains("\"error\"") {
        bail!("InfluxQL {q}: HTTP {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// `(time ms, value)` rows of statement `i` of an InfluxQL answer (null → 0).
pub fn first_values(v: &Value, i: usize) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    for series in v["results"][i]["series"].as_array().into_iter().flatten() {
        for row in series["values"].as_array().into_iter().flatten() {
            out.push((row[0].as_i64().unwrap_or(0), row[1].as_f64().unwrap_or(0.0)));
        }
    }
    out
}

/// Sums per bucket from our usage API: `(start ms, liters)`.
pub fn usage_buckets(
    server: &Server,
    meter: &str,
    step: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(i64, f64)>> {
    let q = format!(
        "/api/v1/meters/{meter}/usage?step={step}&from={}&to={}",
        enc(from),
        enc(to)
    );
    let v = get_json(server, &q)?;
    v["buckets"]
        .as_array()
        .ok_or_else(|| anyhow!("no buckets in {v}"))?
        .iter()
        .map(|b| {
            let start = b["start"].as_str().unwrap_or_default();
            let t = chrono::DateTime::parse_from_rfc3339(start)
                .with_context(|| format!("bucket start {start}"))?;
            Ok((t.timestamp_millis(), b["liters"].as_f64().unwrap_or(0.0)))
        })
        .collect()
}

pub fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// As fast as one core can: 64 datagrams per `sendmmsg` call (still one point each).
fn send_burst(socket: &UdpSocket, lines: &[Vec<u8>]) -> Result<()> {
    use std::os::fd::AsRawFd;
    for chunk in lines.chunks(64) {
        let mut iov: Vec<libc::iovec> = chunk
            .iter()
            .map(|l| libc::iovec {
                iov_base: l.as_ptr() as *mut libc::c_void,
                iov_len: l.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: zeroed mmsghdr is valid (null name, no control data).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: msgs and the iovecs they point to outlive the call.
            let rc = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    msgs[sent..].as_mut_ptr(),
                    (msgs.len() - sent) as libc::c_uint,
                    0,
                )
            };
            if rc < 0 {
                bail!("sendmmsg: {}", std::io::Error::last_os_error());
            }
            sent += rc as usize;
        }
    }
    Ok(())
}
