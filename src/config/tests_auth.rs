//! Tests for `[http.auth]` beyond the basics in `tests.rs` (session length, the
//! machines' token file) and for `[http.tls]`.

use std::path::Path;

use super::tests::{check, ok, METER, PATH};
use super::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const TOKEN: &str = "tok-0123456789abcdef-secret";
/// Base64 that decodes: the PEM reader checks the armour, not the X.509 inside.
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n";

fn auth_table(extra: &str) -> String {
    format!("[http.auth]\nusername = \"me\"\npassword_hash = \"{HASH}\"\n{extra}\n{METER}")
}

/// A temp dir holding `name` with `content`; returns the dir and the file's path.
fn file(name: &str, content: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn sessions_last_thirty_days_unless_configured() {
    let config = ok(&auth_table(""));
    let auth = config.http.auth.unwrap();
    assert_eq!((auth.session_days, auth.api_token), (30, None));
    let config = ok(&auth_table("session_days = 7"));
    assert_eq!(config.http.auth.unwrap().session_days, 7);
    check(
        &auth_table("session_days = 0"),
        &[(4, "http.auth.session_days", "1 to 365 days")],
    );
}

#[test]
fn api_token_is_read_from_its_file_and_never_shows_in_debug() {
    let (_dir, path) = file("token", &format!("{TOKEN}\n"));
    let config = ok(&auth_table(&format!("api_token_file = \"{path}\"")));
    assert_eq!(
        config.http.auth.as_ref().unwrap().api_token.as_deref(),
        Some(TOKEN)
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(TOKEN) && debug.contains("api_token"),
        "{debug}"
    );
}

#[test]
fn short_or_missing_token_files_are_refused_without_quoting_them() {
    let (_dir, path) = file("token", "short\n");
    let text = auth_table(&format!("api_token_file = \"{path}\""));
    check(
        &text,
        &[(4, "http.auth.api_token_file", "at least 16 characters")],
    );
    let err = parse(&text, Path::new(PATH)).unwrap_err().to_string();
    assert!(
        !err.contains("short\n") && !err.contains("\"short\""),
        "{err}"
    );
    check(
        &auth_table("api_token_file = \"/nonexistent/token\""),
        &[(
            4,
            "http.auth.api_token_file",
            "cannot read /nonexistent/token",
        )],
    );
}

#[test]
fn unknown_auth_keys_are_errors() {
    check(
        &auth_table("password = \"hunter2\""),
        &[(4, "http.auth.password", "")],
    );
}

#[test]
fn tls_needs_a_certificate_and_a_key_in_pem() {
    let (dir, cert) = file("cert.pem", CERT_PEM);
    let key = dir.path().join("key.pem");
    std::fs::write(&key, KEY_PEM).unwrap();
    let key = key.to_str().unwrap();
    let text = format!("[http.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n{METER}");
    let tls = ok(&text).http.tls.unwrap();
    assert_eq!(tls.cert_file, Path::new(&cert));
    assert_eq!(tls.key_file, Path::new(key));
    check(
        &format!("[http.tls]\ncert_file = \"{cert}\"\n{METER}"),
        &[(1, "http.tls.key_file", "`key_file` is missing")],
    );
}

#[test]
fn tls_files_of_the_wrong_kind_are_named() {
    let (dir, cert) = file("cert.pem", CERT_PEM);
    let key = dir.path().join("key.pem");
    std::fs::write(&key, KEY_PEM).unwrap();
    let key = key.to_str().unwrap();
    // Swapped: the key file holds no certificate, the certificate no key.
    check(
        &format!("[http.tls]\ncert_file = \"{key}\"\nkey_file = \"{cert}\"\n{METER}"),
        &[
            (2, "http.tls.cert_file", "holds no PEM certificate"),
            (3, "http.tls.key_file", "holds no PEM private key"),
        ],
    );
    check(
        &format!("[http.tls]\ncert_file = \"/nonexistent.pem\"\nkey_file = \"{key}\"\n{METER}"),
        &[(2, "http.tls.cert_file", "cannot be read")],
    );
}

#[test]
fn no_tls_table_means_plain_http() {
    assert!(ok(METER).http.tls.is_none());
}
