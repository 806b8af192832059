//! `watermeter hash-password`: an argon2id hash in PHC form for `[http.auth]
//! password_hash`, and the check that a password matches one.
//!
//! The password is read from stdin: without echo when stdin is a terminal (termios
//! through libc), else the first line. It is never printed or logged. This module
//! does not handle logins or sessions.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Hashes `password` with argon2id and the crate's default cost (19 MiB, two
/// passes: OWASP's recommendation, about a tenth of a second on a Pi 4) and a
/// fresh random salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = random_salt().context("reading random bytes for the salt")?;
    let phc = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`; a malformed hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Reads the password (twice on a terminal, to catch typos) and prints its hash.
pub fn hash_password_command() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let again = prompt_hidden("Again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ; nothing was hashed, run hash-password again");
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty; type one (or pipe it in: echo 'secret' | watermeter hash-password)");
    }
    let phc = hash(&password)?;
    println!("{phc}");
    if stdin.is_terminal() {
        eprintln!("put it in the config as [http.auth] password_hash = \"{phc}\"");
    }
    Ok(())
}

fn random_salt() -> std::io::Result<[u8; 16]> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(salt)
}

/// Prints `prompt` to stderr and reads a line from the terminal with echo off.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // No newline of our own: the terminal echoes the typed one (ECHONL when echo is off).
    drop(echo);
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo off on stdin until dropped (does nothing if it cannot).
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed, then filled, termios.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return EchoOff(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the attributes read in `new` on the same fd.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horsf", &phc));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_salt() {
        assert_ne!(hash("pw").unwrap(), hash("pw").unwrap());
    }
}
