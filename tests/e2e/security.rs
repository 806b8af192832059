//! HTTPS with a certificate from the owner's PKI (a small CA made by `openssl`
//! here), the bind rule's warning, and secrets that never appear in the log,
//! `--help` or `check-config` output.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::auth::{auth_table, PASSWORD, TOKEN, USER};
use crate::pki::{https, make_pki};
use crate::util::{config_text, run_cli, BIN, MAIN_METER};

/// The binary on `config`, its log (stderr) going to `log`; returns the child
/// and the announced dashboard URL.
fn start_logged(config: &Path, log: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("WATERMETER_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start watermeter");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = stdout.lines().map_while(Result::ok);
    let url = lines.find_map(|line| {
        let url = line.strip_prefix("watermeter: dashboard at ")?;
        Some(url.trim_end_matches('/').to_string())
    });
    // Keep reading: a closed pipe would fail the server's next println.
    std::thread::spawn(move || lines.for_each(drop));
    if let Some(url) = url {
        return (child, url);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "watermeter did not announce its dashboard: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn the_dashboard_serves_https_with_the_owners_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    make_pki(tmp.path());
    let extra = format!(
        "{MAIN_METER}{}\n[http.tls]\ncert_file = \"server.pem\"\nkey_file = \"server.key\"\n",
        auth_table(tmp.path())
    );
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(&tmp.path().join("data"), "UTC", &extra),
    )
    .unwrap();
    let (child, url) = start_logged(&config, &tmp.path().join("log"));
    let addr: SocketAddr = url
        .strip_prefix("https://")
        .expect("announced as https")
        .parse()
        .unwrap();
    let ca = tmp.path().join("ca.pem");
    let rt = tokio::runtime::Runtime::new().unwrap();

    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let reply = rt
        .block_on(https(addr, &ca, get("/healthz")))
        .expect("TLS with the CA");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let reply = rt.block_on(https(addr, &ca, get("/"))).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 303"),
        "pages still need a login: {reply}"
    );
    assert!(reply.contains("frame-ancestors 'none'"), "{reply}");
    // Over HTTPS the session cookie is Secure.
    let login = rt.block_on(https(addr, &ca, get("/login"))).unwrap();
    let csrf = login
        .split("wm_csrf=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let form = format!(
        "csrf={csrf}&username={USER}&password={}",
        PASSWORD.replace(' ', "+")
    );
    let post = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: wm_csrf={csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let reply = rt.block_on(https(addr, &ca, post)).unwrap();
    let set = reply
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: wm_session=")
        })
        .unwrap_or_default();
    assert!(
        set.contains("; Secure") && set.contains("HttpOnly"),
        "{reply}"
    );

    // Plain HTTP on the TLS port gets no page.
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    std::io::Write::write_all(&mut plain, get("/healthz").as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert!(!answer.contains("200 OK"), "{answer}");
    stop(child);
}

#[test]
fn an_open_dashboard_on_the_network_logs_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text(&tmp.path().join("data"), "UTC", MAIN_METER).replace(
        "listen = \"127.0.0.1:0\"\n\n[udp]",
        "listen = \"0.0.0.0:0\"\nallow_unauthenticated_lan = true\n\n[udp]",
    );
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    let log = tmp.path().join("log");
    let (child, _) = start_logged(&config, &log);
    stop(child);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("WARN") && log.contains("has no login"),
        "{log}"
    );
}

#[test]
fn secrets_never_appear_in_the_log_help_or_check_config() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp_password = "smtp-Pa55-never-shown";
    std::fs::write(tmp.path().join("smtp-password"), smtp_password).unwrap();
    let auth = auth_table(tmp.path());
    let hash = auth
        .lines()
        .find(|l| l.starts_with("password_hash"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    let extra = format!(
        "{MAIN_METER}{auth}\n[smtp]\nhost = \"127.0.0.1\"\nport = 1\nsecurity = \"none\"\nusername = \"pi\"\npassword_file = \"smtp-password\"\nfrom = \"pi@example.org\"\nto = [\"owner@example.org\"]\n"
    );
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(&tmp.path().join("data"), "UTC", &extra),
    )
    .unwrap();
    let log = tmp.path().join("log");
    let (child, url) = start_logged(&config, &log);
    // Use every secret: wrong and right logins, token and u/p writes.
    let form = |p: &str| format!("username={USER}&password={p}");
    let post = |path: &str, body: &str| {
        let _ = ureq::post(format!("{url}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .config()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .send(body.to_string());
    };
    post("/login", &form("wrong"));
    post("/login", &form(&PASSWORD.replace(' ', "+")));
    post(
        &format!("/write?db=w&u={USER}&p={TOKEN}"),
        "water,meter=main liters=1",
    );
    post(
        &format!("/write?db=w&u={USER}&p=bad-{TOKEN}"),
        "water,meter=main liters=1",
    );
    stop(child);

    let mut outputs = vec![("log", std::fs::read_to_string(&log).unwrap())];
    let config = config.to_str().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["check-config", config],
        vec!["check-config", "--config", config],
    ] {
        let (_, out, err) = run_cli(&args);
        outputs.push(("cli", format!("{args:?}: {out}{err}")));
    }
    // A broken config's messages must not quote the secrets either.
    let broken = std::fs::read_to_string(config)
        .unwrap()
        .replace("username = \"owner\"", "username = 5");
    std::fs::write(config, broken).unwrap();
    let (code, out, err) = run_cli(&["check-config", config]);
    assert_eq!(code, 1, "{out}{err}");
    outputs.push(("broken check-config", format!("{out}{err}")));

    for (what, text) in outputs {
        assert!(!text.is_empty() || what == "log", "{what} printed nothing");
        for secret in [hash.as_str(), TOKEN, PASSWORD, smtp_password] {
            assert!(!text.contains(secret), "{what} shows a secret: {text}");
        }
    }
}
