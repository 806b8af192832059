//! `watermeter hash-password` reads stdin and prints a hash the config accepts.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::BIN;

fn hash_password(stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_piped_password_becomes_an_argon2id_hash_that_verifies_and_the_config_accepts() {
    let (code, out, err) = hash_password(b"s3cret pass\n");
    assert_eq!(code, 0, "{err}");
    let phc = out.trim();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(!out.contains("s3cret") && !err.contains("s3cret"));
    assert!(watermeter::password::verify("s3cret pass", phc));
    assert!(!watermeter::password::verify("s3cret pass\n", phc));
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.toml");
    let text = format!(
        "data_dir = \"{}\"\ntimezone = \"UTC\"\n[http]\nlisten = \"0.0.0.0:8080\"\n[http.auth]\nusername = \"owner\"\npassword_hash = \"{phc}\"\n[[meter]]\nid = \"main\"\nname = \"House\"\n",
        tmp.path().display()
    );
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = crate::util::run_cli(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn an_empty_password_is_refused() {
    let (code, out, err) = hash_password(b"\n");
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("the password is empty"), "{err}");
}
