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
    /// Per meter id: events that were stored before, in the time span this file covers.
    pub overlaps: Vec<(String, u64)>,
}

/// What is kept about an imported file, under `I | fingerprint`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportRecord {
    pub file: String,
    pub imported_at_ms: i64,
    pub points: u64,
    pub liters: f64,
}

/// A file's content fingerprint: its length, CRC-32 and FNV-1a 64, as hex. Two
/// different files share it only by an astronomically unlikely accident. Pure.
pub fn fingerprint(reader: &mut dyn std::io::Read) -> std::io::Result<String> {
    let mut crc = crc32fast::Hasher::new();
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    let mut len: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        for &b in &buf[..n] {
            fnv = (fnv ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        len += n as u64;
    }
    Ok(format!("{len:x}-{:08x}-{fnv:016x}", crc.finalize()))
}

fn imported_key(fingerprint: &str) -> Vec<u8> {
    let mut key = vec![crate::store::codec::prefix::IMPORTED];
    key.extend_from_slice(fingerprint.as_bytes());
    key
}

/// Why an import did not start.
#[derive(Debug, thiserror::Error)]
#[error("{file} was already imported on {when} ({points} points, {liters} L); importing it again would count its water twice. Pass --force to import it anyway")]
pub struct AlreadyImported {
    pub file: String,
    pub when: String,
    pub points: u64,
    pub liters: f64,
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
        for (meter, n) in self.overlaps.iter().filter(|(_, n)| *n > 0) {
            write!(f, "\n  note: meter {meter} already had {n} events in the time span of this file; if they are the same history, it is now counted twice")?;
        }
        for e in &self.examples {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Imports a line protocol file (e.g. `influx_inspect export` output), unless the
/// same content was imported before (then [`AlreadyImported`]; `force` imports it
/// anyway). Two points with the same meter and time stay two events, as everywhere:
/// idempotency comes from the file, not from matching events.
pub fn import(
    store: &Store,
    config: &Config,
    path: &Path,
    precision: Precision,
    force: bool,
) -> anyhow::Result<ImportSummary> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let print = fingerprint(&mut file).with_context(|| format!("reading {}", path.display()))?;
    if let Some(bytes) = store.get_raw(&imported_key(&print))? {
        if let (false, Ok(before)) = (force, serde_json::from_slice::<ImportRecord>(&bytes)) {
            let when = chrono::DateTime::from_timestamp_millis(before.imported_at_ms)
                .map(|t| {
                    t.with_timezone(&config.timezone)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            return Err(AlreadyImported {
                file: before.file,
                when,
                points: before.points,
                liters: before.liters,
            }
            .into());
        }
    }
    let summary = import_file(store, config, path, precision)?;
    let record = ImportRecord {
        file: path.display().to_string(),
        imported_at_ms: chrono::Utc::now().timestamp_millis(),
        points: summary.points,
        liters: summary.liters,
    };
    let value = serde_json::to_vec(&record).context("recording the import")?;
    let key = imported_key(&print);
    store
        .write_ops(|_| vec![crate::store::record::Op::Put { key, value }], true)
        .context("recording the import")?;
    Ok(summary)
}

fn import_file(
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
    // Per meter: the time span of its imported points, and how many were stored.
    let mut spans: Vec<Option<(i64, i64, u64)>> = vec![None; config.meters.len()];
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
            for sample in &parsed.samples {
                if let Some(span) = spans.get_mut(usize::from(sample.meter)) {
                    let (lo, hi, n) = span.get_or_insert((sample.ts_ms, sample.ts_ms, 0));
                    *lo = (*lo).min(sample.ts_ms);
                    *hi = (*hi).max(sample.ts_ms);
                    *n += 1;
                }
            }
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
    // What the span holds now, less what this file added, was there before.
    for (i, span) in spans.iter().enumerate() {
        let Some((lo, hi, added)) = *span else {
            continue;
        };
        let mut now_there = 0u64;
        store.for_each_event(i as MeterIdx, lo, hi.saturating_add(1), |_, _| {
            now_there += 1
        })?;
        summary
            .overlaps
            .push((config.meters[i].id.clone(), now_there.saturating_sub(added)));
    }
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
