//! The `[smtp]` table: required as soon as there is an `[[alert]]`; reads
//! `password_file` and checks `ca_file` now, so a bad mail setup shows at
//! `check-config` instead of at the first alert. Never quotes a secret.

use std::path::{Path, PathBuf};

use super::reader::{Field, Problems, Table};
use super::validate::{int_in, parsed};
use super::values;
use super::{SmtpConfig, SmtpSecurity};

const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "security",
    "username",
    "password_file",
    "from",
    "to",
    "ca_file",
    "dashboard_url",
];

/// `[smtp]`, required as soon as there is an `[[alert]]`.
pub(super) fn smtp(
    root: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<SmtpConfig> {
    let Some(t) = root.table(problems, "smtp") else {
        if let Some((_, span)) = root.keys().find(|(k, _)| *k == "alert") {
            if !root.has("smtp") && !root.has("notify") {
                problems.add(
                    Some(&span),
                    "smtp",
                    "alerts are configured but no channel reaches you: add an [smtp] table or a [[notify]] channel (ntfy, webhook), or remove the [[alert]] entries",
                );
            }
        }
        return None;
    };
    t.check_keys(problems, SMTP_KEYS);
    let host = required_text(
        &t,
        problems,
        "host",
        "name the mail server, such as host = \"smtp.example.org\"",
    );
    let security = parsed(&t, problems, "security", |s| match s {
        "starttls" => Ok(SmtpSecurity::StartTls),
        "tls" => Ok(SmtpSecurity::Tls),
        "none" => Ok(SmtpSecurity::None),
        _ => Err(format!("\"{s}\" is not a security mode; use \"starttls\" (port 587), \"tls\" (port 465) or \"none\" (port 25)")),
    })
    .unwrap_or(SmtpSecurity::StartTls);
    let default_port = match security {
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::None => 25,
    };
    let port = int_in(&t, problems, "port", 1..=65535, default_port, |n| {
        format!("{n} is not a port number; use 1 to 65535, usually {default_port} for this security mode")
    }) as u16;
    let (username, password) = credentials(&t, base_dir, problems);
    let from = required_text(&t, problems, "from", "write the sender address, such as from = \"watermeter <pi@example.org>\"")
        .filter(|f| {
            let ok = values::looks_like_address(f.value);
            if !ok {
                let message = format!("\"{}\" is not a mail address; write it like \"pi@example.org\" or \"watermeter <pi@example.org>\"", f.value);
                problems.bad(f, message);
            }
            ok
        });
    let to = recipients(&t, problems);
    let ca_file = ca_file(&t, base_dir, problems);
    let dashboard_url = t.string(problems, "dashboard_url").and_then(|f| {
        if values::is_http_url(f.value) {
            Some(f.value.trim_end_matches('/').to_string())
        } else {
            problems.bad(
                &f,
                format!(
                    "\"{}\" is not a web address; write it like \"http://pi:8080\"",
                    f.value
                ),
            );
            None
        }
    });
    Some(SmtpConfig {
        host: host?.value.to_string(),
        port,
        security,
        username,
        password,
        from: from?.value.to_string(),
        to,
        ca_file,
        dashboard_url,
    })
}

fn required_text<'t>(
    t: &Table<'t, '_>,
    problems: &mut Problems,
    key: &str,
    fix: &str,
) -> Option<Field<&'t str>> {
    match t.string(problems, key) {
        Some(f) if f.value.trim().is_empty() => {
            problems.bad(&f, format!("must not be empty; {fix}"));
            None
        }
        Some(f) => Some(f),
        None => {
            if !t.has(key) {
                t.missing(problems, key, fix);
            }
            None
        }
    }
}

/// `username` and `password_file` come together; the password is read now.
fn credentials(
    t: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> (Option<String>, Option<String>) {
    let username = t.string(problems, "username");
    let password_file = t.string(problems, "password_file");
    match (&username, &password_file) {
        (Some(f), None) if !t.has("password_file") => problems.bad(
            f,
            "is set but `password_file` is not; add password_file = \"/etc/watermeter/smtp-password\" naming a file that holds the password",
        ),
        (None, Some(f)) if !t.has("username") => {
            problems.bad(f, "is set but `username` is not; add the SMTP login name as username, or remove password_file")
        }
        _ => {}
    }
    let password = password_file.and_then(|f| {
        let path = base_dir.join(f.value);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim_end_matches(['\r', '\n']).is_empty() => {
                problems.bad(&f, format!("{} is empty; write the SMTP password into it", path.display()));
                None
            }
            Ok(text) => Some(text.trim_end_matches(['\r', '\n']).to_string()),
            Err(err) => {
                let message = format!(
                    "cannot read {} ({err}); create it holding only the SMTP password (readable by the watermeter user) or fix the path",
                    path.display()
                );
                problems.bad(&f, message);
                None
            }
        }
    });
    (username.map(|f| f.value.to_string()), password)
}

fn recipients(t: &Table<'_, '_>, problems: &mut Problems) -> Vec<String> {
    let Some(list) = t.strings(problems, "to") else {
        if !t.has("to") {
            t.missing(
                problems,
                "to",
                "write who gets the alerts, such as to = [\"owner@example.org\"]",
            );
        }
        return Vec::new();
    };
    if list.value.is_empty() {
        problems.bad(
            &list,
            "is empty; write at least one address, such as to = [\"owner@example.org\"]",
        );
    }
    for f in &list.value {
        if !values::looks_like_address(f.value) {
            problems.bad(
                f,
                format!(
                    "\"{}\" is not a mail address; write it like \"owner@example.org\"",
                    f.value
                ),
            );
        }
    }
    list.value.iter().map(|f| f.value.to_string()).collect()
}

pub(super) fn ca_file(
    t: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<PathBuf> {
    let f = t.string(problems, "ca_file")?;
    let path = base_dir.join(f.value);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => Some(path),
        Ok(_) => {
            problems.bad(&f, format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); name the CA certificate file in PEM form", path.display()));
            None
        }
        Err(err) => {
            problems.bad(&f, format!("cannot read {} ({err}); name an existing CA certificate file in PEM form, or remove ca_file", path.display()));
            None
        }
    }
}
