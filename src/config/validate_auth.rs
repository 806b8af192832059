//! `[http.auth]` (the login and the machines' token) and `[http.tls]` (the
//! owner's certificate). Reads `api_token_file` and checks the PEM files now, so
//! a mistake shows at `check-config` instead of at the first request. Never quotes
//! a secret: not the hash, not the token, not a key.

use std::path::{Path, PathBuf};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::reader::{Problems, Table};
use super::validate::int_in;
use super::{AuthConfig, TlsConfig};

/// A login lasts this long after the last request unless `session_days` says otherwise.
pub(super) const DEFAULT_SESSION_DAYS: i64 = 30;
/// Shorter tokens can be guessed by a patient LAN neighbour.
const MIN_TOKEN_CHARS: usize = 16;

pub(super) fn auth(
    t: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<AuthConfig> {
    t.check_keys(
        problems,
        &[
            "username",
            "password_hash",
            "session_days",
            "api_token_file",
        ],
    );
    let username = match t.string(problems, "username") {
        Some(f) if f.value.trim().is_empty() => {
            problems.bad(&f, "must not be empty; choose the name to log in with");
            None
        }
        Some(f) => Some(f.value.to_string()),
        None if t.has("username") => None,
        None => {
            t.missing(problems, "username", "add the name to log in with");
            None
        }
    };
    let password_hash = match t.string(problems, "password_hash") {
        // Never quote the value: it is a secret.
        Some(f) if !looks_like_argon2id(f.value) => {
            problems.bad(
                &f,
                "is not an argon2id hash (it must start with `$argon2id$`); run `watermeter hash-password` \
                 and paste its output here, never the password itself",
            );
            None
        }
        Some(f) => Some(f.value.to_string()),
        None if t.has("password_hash") => None,
        None => {
            t.missing(
                problems,
                "password_hash",
                "run `watermeter hash-password` and paste its output as password_hash",
            );
            None
        }
    };
    let session_days = int_in(
        t,
        problems,
        "session_days",
        1..=365,
        DEFAULT_SESSION_DAYS,
        |n| {
            format!("{n} is out of range; a login may last 1 to 365 days after the last visit (default 30)")
        },
    ) as u32;
    let api_token = api_token(t, base_dir, problems);
    Some(AuthConfig {
        username: username?,
        password_hash: password_hash?,
        session_days,
        api_token,
    })
}

/// `api_token_file`: a file holding only the token (a file, not the config, so the
/// config may stay world-readable).
fn api_token(t: &Table<'_, '_>, base_dir: &Path, problems: &mut Problems) -> Option<String> {
    let f = t.string(problems, "api_token_file")?;
    let path = base_dir.join(f.value);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim_end_matches(['\r', '\n']);
            if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
                problems.bad(&f, format!(
                    "{} must hold one token of at least {MIN_TOKEN_CHARS} characters without spaces; \
                     make one with `tr -dc A-Za-z0-9 </dev/urandom | head -c 32 > {}`",
                    path.display(),
                    path.display()
                ));
                None
            } else {
                Some(token.to_string())
            }
        }
        Err(err) => {
            problems.bad(&f, format!(
                "cannot read {} ({err}); create it holding only the token (readable by the watermeter user) or fix the path",
                path.display()
            ));
            None
        }
    }
}

/// `$argon2id$v=19$m=…,t=…,p=…$salt$hash`: the PHC string format.
fn looks_like_argon2id(text: &str) -> bool {
    let parts: Vec<&str> = text.split('$').collect();
    parts.len() == 6
        && parts[0].is_empty()
        && parts[1] == "argon2id"
        && parts[2].starts_with("v=")
        && parts[3].contains("m=")
        && parts[4..].iter().all(|p| !p.is_empty())
}

/// `[http.tls]`: both files are required and must hold PEM of the right kind.
pub(super) fn tls(
    t: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<TlsConfig> {
    t.check_keys(problems, &["cert_file", "key_file"]);
    let cert_file = pem_file(t, base_dir, problems, "cert_file", &|path| {
        match CertificateDer::pem_file_iter(path) {
            Ok(certs) => match certs.collect::<Result<Vec<_>, _>>() {
                Ok(certs) if !certs.is_empty() => Ok(()),
                Ok(_) => Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----); name the server certificate from your PKI".into()),
                Err(e) => Err(format!("is not a readable PEM certificate file ({e})")),
            },
            Err(e) => Err(format!("cannot be read ({e}); fix the path or its permissions")),
        }
    });
    let key_file = pem_file(t, base_dir, problems, "key_file", &|path| {
        // The error never quotes the file: it is a private key.
        match PrivateKeyDer::from_pem_file(path) {
            Ok(_) => Ok(()),
            Err(tokio_rustls::rustls::pki_types::pem::Error::Io(e)) => {
                Err(format!("cannot be read ({e}); fix the path, and let the watermeter user read it"))
            }
            Err(_) => Err("holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC); name the key that belongs to cert_file".into()),
        }
    });
    Some(TlsConfig {
        cert_file: cert_file?,
        key_file: key_file?,
    })
}

/// A required path whose file passes `check`; the problem names the file.
fn pem_file(
    t: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
    key: &str,
    check: &dyn Fn(&Path) -> Result<(), String>,
) -> Option<PathBuf> {
    let Some(f) = t.string(problems, key) else {
        if !t.has(key) {
            t.missing(
                problems,
                key,
                "name the PEM file from your PKI, or remove [http.tls] to serve plain HTTP",
            );
        }
        return None;
    };
    let path = base_dir.join(f.value);
    match check(&path) {
        Ok(()) => Some(path),
        Err(why) => {
            problems.bad(&f, format!("{} {why}", path.display()));
            None
        }
    }
}
