//! `watermeter import` and `export`: line protocol (and CSV) in and out of the
//! store (import also reads the influx CLI's `-format csv` output, detected by its
//! header line), for moving history from InfluxDB and for backups.
//!
//! Both work on the store directly, so the server must not be running at the same
//! time (sled holds a lock; the error says so).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::{Config, FieldSelector};
use crate::ingest::points::{parse_body, Matcher};
use crate::ingest::stats::IngestStats;
use crate::ingest::{influx_csv, MeterIdx};
use crate::line_protocol::{self, FieldValue, Precision};
use crate::store::Store;

/// Lines handed to the store in one batch.
const CHUNK_LINES: usize = 50_000;

#[derive(Debug, Default)]
pub struct ImportSummary {
    pub points: u64,
    pub liters: f64,
    pub skipped: u64,
    /// The first few skipped lines with their reason.
    pub examples: Vec<String>,
    pub ddl_lines: u64,
    pub reasons: Vec<(&'static str, u64)>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {} points ({} L); skipped {}",
            self.points, self.liters, self.skipped
        )?;
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        if !reasons.is_empty() {
            write!(f, " ({})", reasons.join(", "))?;
        }
        if self.ddl_lines > 0 {
            write!(f, "; ignored {} CREATE statements", self.ddl_lines)?;
        }
        for e in &self.examples {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Imports a line protocol file (e.g. `influx_inspect export` output).
pub fn import(
    store: &Store,
    config: &Config,
    path: &Path,
    precision: Precision,
) -> anyhow::Result<ImportSummary> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let matcher = Matcher::new(&config.meters);
    let stats = IngestStats::default();
    let mut summary = ImportSummary::default();
    let progress = std::io::stderr().is_terminal();
    let mut last_report = Instant::now();
    let (mut chunk, mut line, mut first_line_no, mut line_no, mut read) =
        (Vec::new(), Vec::new(), 1usize, 0usize, 0u64);
    let now = chrono::Utc::now().timestamp_millis();
    let mut csv: Option<influx_csv::Converter> = None;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        read += n as u64;
        if n > 0 {
            line_no += 1;
            if line_no == 1 && influx_csv::is_header(&String::from_utf8_lossy(&line)) {
                csv = Some(csv_converter(config, &line, precision));
                chunk.push(b'\n');
            } else if let Some(c) = &csv {
                match c.convert(&String::from_utf8_lossy(&line)) {
                    Ok(lp) => chunk.extend_from_slice(lp.as_bytes()),
                    Err(_) if line.trim_ascii().is_empty() => {}
                    Err(e) => {
                        summary.skipped += 1;
                        if summary.examples.len() < 5 {
                            summary
                                .examples
                                .push(format!("{}:{line_no}: {e}", path.display()));
                        }
                    }
                }
                chunk.push(b'\n');
            } else if line.starts_with(b"CREATE ") {
                summary.ddl_lines += 1;
                chunk.push(b'\n'); // keep line numbers aligned
            } else {
                chunk.extend_from_slice(&line);
                if !line.ends_with(b"\n") {
                    chunk.push(b'\n');
                }
            }
        }
        if n == 0 || line_no - first_line_no + 1 >= CHUNK_LINES {
            let parsed = parse_body(&matcher, &chunk, precision, now, &stats, "import");
            for (l, msg) in parsed
                .rejected
                .iter()
                .take(5usize.saturating_sub(summary.examples.len()))
            {
                let msg = msg.strip_prefix(&format!("line {l}: ")).unwrap_or(msg);
                summary.examples.push(format!(
                    "{}:{}: {msg}",
                    path.display(),
                    l + first_line_no - 1
                ));
            }
            summary.skipped += parsed.rejected.len() as u64;
            let applied = store
                .apply(&parsed.samples)
                .context("writing to the store")?;
            summary.points += applied.events;
            summary.liters += applied.milliliters as f64 / 1000.0;
            chunk.clear();
            first_line_no = line_no + 1;
            if progress && (n == 0 || last_report.elapsed() > Duration::from_millis(300)) {
                last_report = Instant::now();
                let pct = if size > 0 {
                    read as f64 * 100.0 / size as f64
                } else {
                    100.0
                };
                eprint!(
                    "\r{pct:5.1} %  {} points, {} skipped",
                    summary.points, summary.skipped
                );
            }
        }
        if n == 0 {
            break;
        }
    }
    if progress {
        eprintln!();
    }
    store.sync().context("syncing the store")?;
    summary.reasons = stats.rejected_by_reason().to_vec();
    Ok(summary)
}

/// The CSV reader for `influx -format csv` output, knowing which columns are fields.
fn csv_converter(config: &Config, header: &[u8], precision: Precision) -> influx_csv::Converter {
    let mut fields: Vec<String> = Vec::new();
    for m in &config.meters {
        match &m.line_protocol.field {
            FieldSelector::Liters(names) => fields.extend(names.iter().cloned()),
            FieldSelector::Counter(name) => fields.push(name.clone()),
            FieldSelector::Reading { field, .. } => fields.push(field.clone()),
        }
    }
    influx_csv::Converter::new(&String::from_utf8_lossy(header), fields, precision)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    LineProtocol,
    Csv,
}

/// Writes every event of the chosen meters in `[from_ms, to_ms)`.
pub fn export(
    store: &Store,
    config: &Config,
    meters: &[MeterIdx],
    format: Format,
    from_ms: i64,
    to_ms: i64,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let mut buf = String::with_capacity(1 << 16);
    if format == Format::Csv {
        buf.push_str("meter,time,liters\n");
    }
    for &idx in meters {
        let m = &config.meters[usize::from(idx)];
        let lp = &m.line_protocol;
        let tags: Vec<(&str, &str)> = lp
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let field = match &lp.field {
            FieldSelector::Liters(names) => names.first().map_or("liters", |s| s.as_str()),
            FieldSelector::Counter(_) | FieldSelector::Reading { .. } => "liters",
        };
        let mut io_error = None;
        store.for_each_event(idx, from_ms, to_ms, |ts, ml| {
            if io_error.is_some() {
                return;
            }
            n += 1;
            let liters = ml as f64 / 1000.0;
            match format {
                Format::LineProtocol => {
                    let fields = [(field, FieldValue::Float(liters))];
                    line_protocol::write_line(
                        &mut buf,
                        &lp.measurement,
                        &tags,
                        &fields,
                        Some(ts * 1_000_000),
                    );
                }
                Format::Csv => {
                    let t = crate::buckets::local(config.timezone, ts)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
                    buf.push_str(&format!("{},{t},{liters}\n", m.id));
                }
            }
            if buf.len() > 1 << 16 {
                if let Err(e) = out.write_all(buf.as_bytes()) {
                    io_error = Some(e);
                }
                buf.clear();
            }
        })?;
        if let Some(e) = io_error {
            return Err(e).context("writing the export");
        }
    }
    out.write_all(buf.as_bytes())
        .context("writing the export")?;
    out.flush().context("writing the export")?;
    Ok(n)
}
