//! watermeter vs InfluxDB 1.x on the same workload, side by side (issue 7), or
//! watermeter alone (`--only-watermeter`, issue 2's benchmark).
//!
//! Run through `bench/compare.sh`, which generates the workloads and builds the
//! release binary. Every measurement starts fresh servers, alternates the systems
//! (A B A B …) and reports medians. Nothing here asserts on speed; a wrong answer
//! (different totals or bucket sums) stops the run.

mod checks;
mod client;
mod servers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use checks::{local_ms, Span};
use client::Workload;
use servers::{Kind, Server, Setup};

#[derive(Parser, Debug)]
struct Args {
    /// Directory with m1y.lp, m50y.lp and m1x10y.lp from gen_events.py.
    #[arg(long)]
    cache: PathBuf,
    /// Scratch directory for the servers' temp dirs.
    #[arg(long)]
    scratch: PathBuf,
    /// The release watermeter binary.
    #[arg(long)]
    bin: PathBuf,
    /// Repetitions of each measurement per system (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// A few minutes instead of half an hour: one repetition, shorter UDP runs,
    /// the first million lines of the 50-meter year.
    #[arg(long)]
    quick: bool,
    /// Measure watermeter alone (no InfluxDB).
    #[arg(long)]
    only_watermeter: bool,
    /// Only the UDP measurements (paced and unpaced), both systems unless
    /// --only-watermeter.
    #[arg(long)]
    only_udp: bool,
    /// With --only-udp: skip the paced rates (the unpaced bursts alone).
    #[arg(long)]
    unpaced_only: bool,
    /// Write the markdown table here too.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// All samples of one measurement, per system.
#[derive(Default)]
struct Row {
    name: String,
    unit: &'static str,
    /// "higher" or "lower" is better.
    higher_better: bool,
    wm: Vec<f64>,
    influx: Vec<f64>,
}

struct Bench {
    args: Args,
    systems: Vec<Kind>,
    rows: Vec<Row>,
}

impl Bench {
    fn record(&mut self, name: &str, unit: &'static str, higher_better: bool, kind: Kind, v: f64) {
        let i = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    name: name.to_string(),
                    unit,
                    higher_better,
                    ..Row::default()
                });
                self.rows.len() - 1
            }
        };
        match kind {
            Kind::Watermeter => self.rows[i].wm.push(v),
            Kind::Influx => self.rows[i].influx.push(v),
        }
        eprintln!("  {name} [{}]: {}", kind.name(), fmt(v, unit));
    }

    fn start(&self, kind: Kind, setup: &Setup) -> Result<Server> {
        Server::start(kind, setup, &self.args.scratch, &self.args.bin)
    }
}

fn meters(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("m{i:03}")).collect()
}

fn counts(w: &Workload, meters: &[String]) -> Vec<u64> {
    let mut out = vec![0u64; meters.len()];
    for l in &w.lines {
        let tag = l.split(|&b| b == b' ').next().unwrap_or_default();
        if let Some(i) = meters.iter().position(|m| tag.ends_with(m.as_bytes())) {
            out[i] += 1;
        }
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.scratch)?;
    let systems = if args.only_watermeter {
        vec![Kind::Watermeter]
    } else {
        vec![Kind::Watermeter, Kind::Influx]
    };
    let reps = if args.quick { 1 } else { args.reps.max(1) };
    let mut b = Bench {
        args,
        systems,
        rows: Vec::new(),
    };
    let started = Instant::now();
    let year = Span {
        from: local_ms(2023, 1, 1),
        to: local_ms(2024, 1, 1),
        year: 2023,
    };
    if !b.args.only_udp {
        http_phase(&mut b, reps, year)?;
    }
    udp_phase(&mut b, reps)?;
    if !b.args.only_udp {
        dashboard_phase(&mut b)?;
    }
    let size = std::fs::metadata(&b.args.bin)?.len() as f64;
    b.record(
        "stripped release binary",
        "MB",
        false,
        Kind::Watermeter,
        size / 1e6,
    );
    if b.systems.contains(&Kind::Influx) {
        let influxd = std::fs::metadata("/usr/bin/influxd").map_or(0, |m| m.len()) as f64;
        b.record(
            "stripped release binary",
            "MB",
            false,
            Kind::Influx,
            influxd / 1e6,
        );
    }
    let table = table(&b);
    println!("\n{table}");
    println!("(whole run: {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(out) = &b.args.out {
        std::fs::write(out, &table)?;
    }
    Ok(())
}

fn http_phase(b: &mut Bench, reps: usize, year: Span) -> Result<()> {
    for (file, n_meters) in [("m1y.lp", 1), ("m50y.lp", 50)] {
        let mut w = Workload::load(&b.args.cache.join(file), 5000)?;
        if b.args.quick && n_meters == 50 {
            w.lines.truncate(1_000_000);
            w.batches.truncate(200);
        }
        let ms = meters(n_meters);
        let expected = counts(&w, &ms);
        let setup = Setup {
            meters: ms.clone(),
            reading: None,
        };
        let label = format!("{n_meters} meter{}", if n_meters > 1 { "s" } else { "" });
        for clients in [1, 2] {
            for rep in 0..reps {
                let mut answers: Vec<checks::Answers> = Vec::new();
                for kind in b.systems.clone() {
                    eprintln!("http {file} clients={clients} rep={rep} {}", kind.name());
                    let mut s = b.start(kind, &setup)?;
                    let rate = client::http_ingest(&s, &w, clients)?;
                    let ended = Instant::now();
                    let name = format!("HTTP /write {label}, {clients} client(s)");
                    b.record(&name, "points/s", true, kind, rate);
                    let a = checks::answers(&s, &ms, year)?;
                    checks::check_counts(&a, &expected)
                        .with_context(|| format!("{} after {file}", kind.name()))?;
                    answers.push(a);
                    let events = w.lines.len() as f64;
                    if n_meters == 50 && clients == 1 {
                        b.record(
                            "peak RSS during 50-meter ingest",
                            "MB",
                            false,
                            kind,
                            s.rss().1 as f64 / 1e6,
                        );
                        b.record(
                            "bytes/event, 50-meter year",
                            "B",
                            false,
                            kind,
                            s.disk_bytes() as f64 / events,
                        );
                    }
                    if n_meters == 1 && clients == 1 {
                        std::thread::sleep(Duration::from_secs(5));
                        b.record(
                            "idle RSS, 1-meter year loaded",
                            "MB",
                            false,
                            kind,
                            s.rss().0 as f64 / 1e6,
                        );
                        b.record(
                            "bytes/event after ingest, 1-meter year",
                            "B",
                            false,
                            kind,
                            s.disk_bytes() as f64 / events,
                        );
                        // InfluxDB compacts once writes have been cold for 10 s.
                        std::thread::sleep(Duration::from_secs(12).saturating_sub(ended.elapsed()));
                        s.restart()?;
                        std::thread::sleep(Duration::from_secs(8));
                        b.record(
                            "bytes/event after restart+compaction, 1-meter year",
                            "B",
                            false,
                            kind,
                            s.disk_bytes() as f64 / events,
                        );
                        b.record(
                            "idle RSS after restart, 1-meter year",
                            "MB",
                            false,
                            kind,
                            s.rss().0 as f64 / 1e6,
                        );
                        if kind == Kind::Influx {
                            let tsm = servers::tsm_bytes(&s.root) as f64 / events;
                            let name = "InfluxDB: TSM files alone after compaction, 1-meter year";
                            b.record(name, "B", false, kind, tsm);
                        }
                    }
                }
                if let [a, c] = &answers[..] {
                    checks::compare(a, c)
                        .with_context(|| format!("{file}: watermeter and InfluxDB disagree"))?;
                }
            }
        }
    }
    Ok(())
}

fn udp_phase(b: &mut Bench, reps: usize) -> Result<()> {
    let w = Workload::load(&b.args.cache.join("m1y.lp"), 5000)?;
    let setup = Setup {
        meters: meters(1),
        reading: None,
    };
    let seconds = if b.args.quick { 3 } else { 10 };
    // 0 = unpaced from one sender; u64::MAX = unpaced from two senders at once.
    let rates: Vec<u64> = if b.args.only_watermeter {
        vec![2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 0]
    } else {
        vec![2_000, 20_000, 0, u64::MAX]
    };
    let reps = if b.args.only_watermeter { 1 } else { reps };
    let unpaced_only = b.args.unpaced_only;
    for rate in rates
        .into_iter()
        .filter(|&r| !unpaced_only || r == 0 || r == u64::MAX)
    {
        let unpaced = rate == 0 || rate == u64::MAX;
        let n = if unpaced {
            w.lines.len()
        } else {
            w.lines.len().min((rate * seconds) as usize)
        };
        let label = match rate {
            0 => "UDP unpaced".to_string(),
            u64::MAX => "UDP unpaced, 2 senders".to_string(),
            r => format!("UDP {r}/s"),
        };
        for rep in 0..reps {
            for kind in b.systems.clone() {
                eprintln!("udp {label} n={n} rep={rep} {}", kind.name());
                let s = b.start(kind, &setup)?;
                let cpu_before = s.cpu_seconds();
                let overruns_before = udp_rcvbuf_errors();
                let sent_rate = match rate {
                    u64::MAX => client::udp_send_parallel(&s, &w, n, 2)?,
                    r => client::udp_send(&s, &w, n, r)?,
                };
                let got = client::settled_count(&s, &setup.meters)?;
                let lost = 100.0 * (n as f64 - got as f64) / n as f64;
                b.record(&format!("{label}: lost"), "%", false, kind, lost);
                if unpaced {
                    // The settle wait is idle time, so this is the cost of the burst.
                    let cpu = s.cpu_seconds() - cpu_before;
                    let name = format!("{label}: server CPU per datagram");
                    b.record(&name, "µs", false, kind, 1e6 * cpu / n as f64);
                    let name = format!("{label}: send rate");
                    b.record(&name, "datagrams/s", true, kind, sent_rate);
                    let threads: Vec<String> = s
                        .thread_cpu()
                        .iter()
                        .take(6)
                        .map(|(n, u, k)| format!("{n} {u:.2}+{k:.2}"))
                        .collect();
                    eprintln!("  CPU s by thread (user+sys): {}", threads.join(", "));
                    eprintln!(
                        "  kernel receive-buffer overruns (whole host): {}",
                        udp_rcvbuf_errors().saturating_sub(overruns_before)
                    );
                }
            }
        }
    }
    if b.args.only_watermeter {
        let best = b
            .rows
            .iter()
            .filter(|r| r.name.starts_with("UDP ") && r.name.ends_with("/s: lost"))
            .filter(|r| r.wm.iter().all(|&l| l <= 0.0))
            .filter_map(|r| r.name[4..].split('/').next()?.parse::<f64>().ok())
            .fold(0.0, f64::max);
        b.record(
            "UDP datagrams/s with zero loss (highest paced rate tried)",
            "datagrams/s",
            true,
            Kind::Watermeter,
            best,
        );
    }
    Ok(())
}

/// `RcvbufErrors` of /proc/net/snmp: datagrams the kernel dropped because a
/// socket's receive buffer was full (host-wide, so other traffic counts too).
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// One dashboard read, in both dialects.
struct DashQuery {
    name: &'static str,
    wm: String,
    influx: String,
}

fn dashboard_queries(anchor: i64) -> Vec<DashQuery> {
    let now = local_ms(2024, 12, 31);
    let day_before = local_ms(2024, 12, 30);
    let dec1 = local_ms(2024, 12, 1);
    let months = checks::month_bounds(2023, 12, 12);
    let usage = |step: &str, from: i64, to: i64| {
        format!(
            "/api/v1/meters/m001/usage?step={step}&from={}&to={}",
            client::enc(&checks::rfc3339(from)),
            client::enc(&checks::rfc3339(to))
        )
    };
    let group = |unit: &str, from: i64, to: i64| {
        format!("SELECT sum(liters) FROM water WHERE meter='m001' AND time >= {from}ms AND time < {to}ms GROUP BY time({unit}) fill(0) tz('Europe/Vienna')")
    };
    vec![
        DashQuery {
            name: "24 hourly sums",
            wm: usage("hour", day_before, now),
            influx: group("1h", day_before, now),
        },
        DashQuery {
            name: "30 daily sums",
            wm: usage("day", dec1, now),
            influx: group("1d", dec1, now),
        },
        DashQuery {
            name: "12 monthly sums",
            wm: usage("month", months[0], months[12]),
            influx: checks::monthly_influxql("m001", &months),
        },
        DashQuery {
            name: "total",
            wm: "/api/v1/meters/m001".into(),
            influx: "SELECT sum(liters) FROM water WHERE meter='m001'".into(),
        },
        DashQuery {
            name: "reading",
            wm: "/api/v1/meters/m001".into(),
            influx: format!(
                "SELECT sum(liters) FROM water WHERE meter='m001' AND time >= {anchor}ms"
            ),
        },
    ]
}

fn dashboard_phase(b: &mut Bench) -> Result<()> {
    let w = Workload::load(&b.args.cache.join("m1x10y.lp"), 5000)?;
    let anchor = local_ms(2020, 1, 1);
    let setup = Setup {
        meters: meters(1),
        reading: Some((100.0, checks::rfc3339(anchor))),
    };
    let events = w.lines.len() as f64;
    let mut servers = Vec::new();
    let mut answers = Vec::new();
    for kind in b.systems.clone() {
        eprintln!("10-year store: loading {}", kind.name());
        let s = b.start(kind, &setup)?;
        let rate = client::http_ingest(&s, &w, 1)?;
        b.record(
            "HTTP /write 1 meter × 10 years, 1 client",
            "points/s",
            true,
            kind,
            rate,
        );
        let span = Span {
            from: local_ms(2015, 1, 1),
            to: local_ms(2024, 12, 31),
            year: 2015,
        };
        let a = checks::answers(&s, &setup.meters, span)?;
        checks::check_counts(&a, &counts(&w, &setup.meters))?;
        answers.push(a);
        std::thread::sleep(Duration::from_secs(5));
        b.record(
            "idle RSS, 10-year store loaded",
            "MB",
            false,
            kind,
            s.rss().0 as f64 / 1e6,
        );
        b.record(
            "bytes/event, 10-year store",
            "B",
            false,
            kind,
            s.disk_bytes() as f64 / events,
        );
        servers.push(s);
    }
    if let [a, c] = &answers[..] {
        checks::compare(a, c).context("10-year store: watermeter and InfluxDB disagree")?;
    }
    let queries = dashboard_queries(anchor);
    check_dashboard(&servers, &queries, anchor)?;
    let iterations = if b.args.quick { 10 } else { 31 };
    let agents: Vec<ureq::Agent> = servers.iter().map(|_| client::agent()).collect();
    let mut times: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); queries.len()]; servers.len()];
    for i in 0..iterations + 3 {
        for (si, s) in servers.iter().enumerate() {
            for (qi, q) in queries.iter().enumerate() {
                let t = Instant::now();
                timed_query(&agents[si], s, q)?;
                if i >= 3 {
                    times[si][qi].push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    }
    for (si, s) in servers.iter().enumerate() {
        let mut set = 0.0;
        for (qi, q) in queries.iter().enumerate() {
            let p50 = median(&mut times[si][qi]);
            set += p50;
            b.record(
                &format!("p50 {} (10-year store)", q.name),
                "ms",
                false,
                s.kind,
                p50,
            );
        }
        b.record("dashboard set, sum of p50s", "ms", false, s.kind, set);
    }
    Ok(())
}

fn timed_query(agent: &ureq::Agent, s: &Server, q: &DashQuery) -> Result<()> {
    let r = match s.kind {
        Kind::Watermeter => agent.get(format!("http://{}{}", s.http, q.wm)).call()?,
        Kind::Influx => agent
            .get(format!("http://{}/query", s.http))
            .query("db", "bench")
            .query("epoch", "ms")
            .query("q", &q.influx)
            .call()?,
    };
    let status = r.status();
    let body = r.into_body().read_to_string()?;
    if !status.is_success() {
        bail!("{}: HTTP {status}: {body}", q.name);
    }
    Ok(())
}

/// The dashboard answers agree (the reading: 100 m³ plus the liters since the anchor).
fn check_dashboard(servers: &[Server], queries: &[DashQuery], anchor: i64) -> Result<()> {
    let [wm, influx] = servers else { return Ok(()) };
    let since = client::first_values(&client::influx_query(influx, &queries[4].influx)?, 0);
    let liters = since.first().map_or(0.0, |r| r.1);
    let reading = client::meter_json(wm, "m001")?["reading_m3"]
        .as_f64()
        .unwrap_or(0.0);
    if (reading - (100.0 + liters / 1000.0)).abs() > 1e-6 {
        bail!(
            "reading: watermeter shows {reading} m³, InfluxDB's sum since {} gives {liters} L",
            checks::rfc3339(anchor)
        );
    }
    let now = local_ms(2024, 12, 31);
    for (step, from) in [
        ("hour", local_ms(2024, 12, 30)),
        ("day", local_ms(2024, 12, 1)),
    ] {
        let x = vec![(
            step.to_string(),
            checks::buckets(wm, "m001", step, from, now)?,
        )];
        let y = vec![(
            step.to_string(),
            checks::buckets(influx, "m001", step, from, now)?,
        )];
        checks::compare(&x, &y).context("dashboard query")?;
    }
    let months = checks::month_bounds(2023, 12, 12);
    let x = vec![("months".to_string(), checks::monthly(wm, "m001", &months)?)];
    let y = vec![(
        "months".to_string(),
        checks::monthly(influx, "m001", &months)?,
    )];
    checks::compare(&x, &y).context("dashboard monthly query")
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fmt(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "–".into();
    }
    match unit {
        "points/s" | "datagrams/s" => format!("{:.0} {unit}", v),
        "ms" => format!("{v:.2} ms"),
        "µs" => format!("{v:.2} µs"),
        "%" => format!("{v:.2} %"),
        _ => format!("{v:.1} {unit}"),
    }
}

fn table(b: &Bench) -> String {
    let mut out = String::new();
    if b.systems.len() == 1 {
        out.push_str("| measurement | watermeter (median) |\n|---|---|\n");
        for r in &b.rows {
            let mut wm = r.wm.clone();
            out.push_str(&format!(
                "| {} | {} |\n",
                r.name,
                fmt(median(&mut wm), r.unit)
            ));
        }
        return out;
    }
    out.push_str(
        "| measurement | watermeter | InfluxDB 1.6 | watermeter/InfluxDB |\n|---|---|---|---|\n",
    );
    for r in &b.rows {
        let (mut wm, mut ix) = (r.wm.clone(), r.influx.clone());
        let (a, c) = (median(&mut wm), median(&mut ix));
        let ratio = if c != 0.0 && a.is_finite() {
            format!("{:.2}×", a / c)
        } else {
            "–".into()
        };
        let better = if r.higher_better {
            "higher is better"
        } else {
            "lower is better"
        };
        out.push_str(&format!(
            "| {} ({better}) | {} | {} | {ratio} |\n",
            r.name,
            fmt(a, r.unit),
            fmt(c, r.unit)
        ));
    }
    // UDP loss depends on the send rate of each run: show every repetition.
    for r in b.rows.iter().filter(|r| r.name.starts_with("UDP unpaced")) {
        if r.wm.len() < 2 && r.influx.len() < 2 {
            continue;
        }
        let all = |v: &[f64]| {
            v.iter()
                .map(|&x| fmt(x, r.unit))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\n{}, every repetition: watermeter {}; InfluxDB {}\n",
            r.name,
            all(&r.wm),
            all(&r.influx)
        ));
    }
    out
}
