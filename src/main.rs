//! The `watermeter` command line: parse arguments, load the config, run the
//! command, turn errors into a one-line message and exit status 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use watermeter::config::{self, Config};

/// The system allocator, which also gives back the pages of sled's unused
/// metrics after sled first opens (`store::sled_memory`).
#[global_allocator]
static ALLOCATOR: watermeter::store::sled_memory::Allocator =
    watermeter::store::sled_memory::Allocator;
use watermeter::ingest::line_protocol::Precision;
use watermeter::{app, transfer};

#[derive(Parser)]
#[command(
    name = "watermeter",
    version,
    about = "Counts every liter a house uses: S0 pulses or line protocol in, history on the Pi, a dashboard, email alerts."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (without --config: built-in defaults, data in ./watermeter-data, all on 127.0.0.1).
    Serve {
        /// The config file (without it: built-in defaults, data in ./watermeter-data,
        /// everything on 127.0.0.1).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run with a simulated household meter and 90 days of back-filled history.
    Demo {
        /// Address of the dashboard (a free port is taken when 8080 is in use).
        #[arg(long, value_name = "ADDR", default_value = watermeter::demo::LISTEN)]
        listen: std::net::SocketAddr,
        /// Address for line protocol over UDP (a free port is taken when 8089 is in use).
        #[arg(long, value_name = "ADDR", default_value = watermeter::demo::UDP)]
        udp: std::net::SocketAddr,
        /// Where the demo keeps its history (kept between runs).
        #[arg(long, value_name = "DIR", default_value = "watermeter-demo")]
        data_dir: PathBuf,
    },
    /// Validate a config file; print each problem with its line number.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The config file (same as --config).
        #[arg(value_name = "FILE", conflicts_with = "config")]
        file: Option<PathBuf>,
    },
    /// Send one test mail through [smtp]; print success or the server's exact error.
    TestEmail {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print every edge on a GPIO pin live, to check the wiring (Ctrl-C ends it).
    GpioTest {
        /// BCM pin number.
        #[arg(long)]
        pin: u8,
        #[arg(long, default_value = "up", value_parser = ["up", "down", "off"])]
        pull: String,
        /// The edge on which the contact closes.
        #[arg(long, default_value = "falling", value_parser = ["falling", "rising"])]
        edge: String,
        #[arg(long, default_value_t = 30)]
        debounce_ms: u32,
    },
    /// Load line protocol history (e.g. `influx_inspect export` output) into the store.
    Import {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Precision of the timestamps in the file.
        #[arg(long, default_value = "ns")]
        precision: String,
        /// Import the file even if the same content was imported before.
        #[arg(long)]
        force: bool,
        #[arg(value_name = "FILE.lp")]
        file: PathBuf,
    },
    /// Read a password on stdin (no echo on a terminal); print its argon2id hash for [http.auth] password_hash.
    HashPassword,
    /// Write stored events as line protocol or CSV to stdout.
    Export {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, default_value = "lp", value_parser = ["lp", "csv"])]
        format: String,
        /// Only this meter (default: all).
        #[arg(long, value_name = "ID")]
        meter: Option<String>,
        /// RFC 3339 start (inclusive).
        #[arg(long, value_name = "T")]
        from: Option<String>,
        /// RFC 3339 end (exclusive).
        #[arg(long, value_name = "T")]
        to: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("watermeter: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WATERMETER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sled=warn"));
    // Colour only for a person at a terminal: journald shows escape codes raw.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config } => {
            let config = load_or_defaults(config.as_deref())?;
            runtime()?.block_on(app::run(config, None))?;
        }
        Command::Demo {
            listen,
            udp,
            data_dir,
        } => {
            let config = watermeter::demo::config(listen, udp, data_dir);
            runtime()?.block_on(app::run(config, Some(watermeter::demo::extra())))?;
        }
        Command::CheckConfig { config, file } => {
            let Some(path) = config.or(file) else {
                anyhow::bail!("check-config needs a file: watermeter check-config --config /etc/watermeter/config.toml");
            };
            return Ok(check_config(&path));
        }
        Command::TestEmail { config } => return test_email(&config),
        Command::GpioTest {
            pin,
            pull,
            edge,
            debounce_ms,
        } => return gpio_test(pin, &pull, &edge, debounce_ms),
        Command::Import {
            config,
            precision,
            force,
            file,
        } => {
            let config = load_or_defaults(config.as_deref())?;
            let precision = Precision::parse(&precision).map_err(anyhow::Error::msg)?;
            let store = app::open_store(&config)?;
            let summary = transfer::import(&store, &config, &file, precision, force);
            let summary = match summary {
                Ok(s) => s,
                Err(e) => {
                    store.close()?;
                    return Err(e);
                }
            };
            store.close()?;
            println!("{summary}");
        }
        Command::HashPassword => watermeter::password::hash_password_command()?,
        Command::Export {
            config,
            format,
            meter,
            from,
            to,
        } => {
            let config = load_or_defaults(config.as_deref())?;
            let meters = match meter {
                None => (0..config.meters.len() as u16).collect(),
                Some(id) => vec![config
                    .meters
                    .iter()
                    .position(|m| m.id == id)
                    .with_context(|| format!("no meter with id '{id}' in the config"))?
                    as u16],
            };
            let format = if format == "csv" {
                transfer::Format::Csv
            } else {
                transfer::Format::LineProtocol
            };
            let from = parse_time("--from", from.as_deref())?.unwrap_or(0);
            let to = parse_time("--to", to.as_deref())?.unwrap_or(i64::MAX / 2);
            let store = app::open_store(&config)?;
            let mut out = std::io::stdout().lock();
            transfer::export(&store, &config, &meters, format, from, to, &mut out)?;
            store.close()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gpio_test(pin: u8, pull: &str, edge: &str, debounce_ms: u32) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use watermeter::config::{Edge, GpioConfig, Pull};
    use watermeter::ingest::gpio;
    let cfg = GpioConfig {
        pin,
        pull: match pull {
            "down" => Pull::Down,
            "off" => Pull::Off,
            _ => Pull::Up,
        },
        edge: if edge == "rising" {
            Edge::Rising
        } else {
            Edge::Falling
        },
        debounce_ms,
        min_pulse_ms: 20,
        min_gap_ms: 20,
    };
    let source = gpio::open_rppal(&cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            let _ = rt.block_on(tokio::signal::ctrl_c());
        }
        flag.store(true, Ordering::SeqCst);
    });
    println!("watching BCM pin {pin} (pull {pull}, contact closes on the {edge} edge); open a tap, Ctrl-C to stop");
    let mut out = std::io::stdout().lock();
    gpio::run_gpio_test(&cfg, source, &mut out, &stop).context("writing the edges")?;
    Ok(ExitCode::SUCCESS)
}

fn test_email(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let Some(smtp) = &config.smtp else {
        anyhow::bail!(
            "{} has no [smtp] table: add one (see config.example.toml) to send mail",
            path.display()
        );
    };
    match runtime()?.block_on(watermeter::notify::email::test_email(smtp)) {
        Ok(done) => {
            println!("{done}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("watermeter: the test mail was not sent: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match load_checked(path) {
        Ok(c) => {
            let alerts = c.alerts.len();
            println!(
                "{}: ok ({} meter(s), {alerts} alert(s))",
                path.display(),
                c.meters.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    load_checked(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The config with every alert's kind-specific keys checked too (they live in
/// `alert::kinds`, above config).
fn load_checked(path: &Path) -> Result<Config, config::ConfigError> {
    watermeter::alert::kinds::load_config(path)
}

fn load_or_defaults(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => load(p),
        None => Ok(config::builtin_defaults()),
    }
}

fn parse_time(flag: &str, v: Option<&str>) -> anyhow::Result<Option<i64>> {
    v.map(|v| {
        chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| t.timestamp_millis())
            .with_context(|| {
                format!("{flag} must be an RFC 3339 time such as 2026-01-01T00:00:00Z, not '{v}'")
            })
    })
    .transpose()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
