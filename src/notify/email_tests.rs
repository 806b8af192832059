//! The mailer against a tiny scripted SMTP server on 127.0.0.1 and the hint table.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::{hint, test_email, ErrorFacts, MailErrorKind, Mailer};
use crate::config::{SmtpConfig, SmtpSecurity};

fn smtp(port: u16, security: SmtpSecurity) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security,
        username: None,
        password: None,
        from: "watermeter <pi@example.org>".into(),
        to: vec!["owner@example.org".into(), "second@example.org".into()],
        ca_file: None,
        dashboard_url: None,
    }
}

/// Serve one SMTP session; `auth_reply` answers AUTH. Returns the transcript.
async fn one_session(listener: TcpListener, auth_reply: &'static str) -> String {
    let (socket, _) = listener.accept().await.expect("accept");
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut transcript = String::new();
    write.write_all(b"220 test ESMTP\r\n").await.expect("greet");
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        transcript.push_str(&line);
        transcript.push('\n');
        let reply: &[u8] = if in_data {
            if line != "." {
                continue;
            }
            in_data = false;
            b"250 queued\r\n"
        } else if line.starts_with("EHLO") {
            b"250-test\r\n250 AUTH PLAIN LOGIN\r\n"
        } else if line.starts_with("AUTH") {
            auth_reply.as_bytes()
        } else if line == "DATA" {
            in_data = true;
            b"354 go ahead\r\n"
        } else if line == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            break;
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await.expect("reply");
    }
    transcript
}

async fn server(auth_reply: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (port, tokio::spawn(one_session(listener, auth_reply)))
}

#[tokio::test]
async fn test_email_reaches_every_recipient_with_date_and_message_id() {
    let (port, session) = server("235 ok\r\n").await;
    let ok = test_email(&smtp(port, SmtpSecurity::None))
        .await
        .expect("sent");
    assert!(ok.contains("owner@example.org, second@example.org"), "{ok}");
    let transcript = session.await.expect("session");
    for want in [
        "RCPT TO:<owner@example.org>",
        "RCPT TO:<second@example.org>",
        "Subject: [watermeter] test mail",
        "Date: ",
        "Message-ID: <",
        ".watermeter@example.org>",
    ] {
        assert!(
            transcript.contains(want),
            "{want:?} missing in:\n{transcript}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_keeps_the_server_words_and_hints_at_the_fix() {
    let (port, _session) = server("535 5.7.8 Authentication credentials invalid\r\n").await;
    let mut cfg = smtp(port, SmtpSecurity::None);
    cfg.username = Some("pi".into());
    cfg.password = Some("wrong-secret".into());
    let err = test_email(&cfg).await.expect_err("rejected");
    assert_eq!((err.kind, err.code), (MailErrorKind::Rejected, Some(535)));
    let text = err.to_string();
    assert!(
        text.contains("Authentication credentials invalid"),
        "{text}"
    );
    assert!(text.contains("check username and password_file"), "{text}");
    assert!(!text.contains("wrong-secret"), "{text}");
}

#[tokio::test]
async fn a_closed_port_asks_whether_the_server_runs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let err = test_email(&smtp(port, SmtpSecurity::None))
        .await
        .expect_err("refused");
    let want = format!("is the mail server running at 127.0.0.1:{port}?");
    assert_eq!(err.hint.as_deref(), Some(want.as_str()), "{err}");
}

#[test]
fn config_mistakes_are_named_before_connecting() {
    let check = |cfg: SmtpConfig, want: &str| {
        let err = Mailer::new(&cfg).expect_err("bad config");
        assert_eq!(err.kind, MailErrorKind::Config);
        assert!(err.to_string().contains(want), "{want:?} missing in {err}");
    };
    let mut bad_from = smtp(25, SmtpSecurity::None);
    bad_from.from = "not an address".into();
    check(
        bad_from,
        "[smtp] from = \"not an address\" is not a mail address",
    );
    let mut missing_ca = smtp(25, SmtpSecurity::StartTls);
    missing_ca.ca_file = Some("/nonexistent/ca.pem".into());
    check(
        missing_ca,
        "[smtp] ca_file /nonexistent/ca.pem: cannot read it",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let mut bad_ca = smtp(25, SmtpSecurity::Tls);
    bad_ca.ca_file = Some(not_pem);
    check(bad_ca, "no PEM certificate in it");
}

#[test]
fn debug_of_a_mailer_hides_the_password() {
    let mut cfg = smtp(25, SmtpSecurity::StartTls);
    cfg.username = Some("pi".into());
    cfg.password = Some("hunter2".into());
    let mailer = Mailer::new(&cfg).expect("mailer");
    assert!(!format!("{mailer:?}").contains("hunter2"));
}

/// The hint for `text` (with the reply code, refused, timed out flags) on `port`/`sec`.
fn check(
    text: &str,
    flags: (Option<u16>, bool, bool),
    port: u16,
    sec: SmtpSecurity,
    want: Option<&str>,
) {
    let (code, refused, timeout) = flags;
    let facts = ErrorFacts {
        code,
        refused,
        timeout,
        text,
    };
    assert_eq!(
        hint(&facts, "mail.lan", port, sec).as_deref(),
        want,
        "{facts:?} {port} {sec:?}"
    );
}

#[test]
fn hints_name_the_likely_fix() {
    use SmtpSecurity as S;
    let plain = (None, false, false);
    let tls_garbage = "tls error: received corrupt message of type InvalidContentType";
    check(
        tls_garbage,
        plain,
        587,
        S::Tls,
        Some("port 587 usually needs security = \"starttls\""),
    );
    let timeout = "Connection error: timed out";
    check(
        timeout,
        (None, false, true),
        465,
        S::StartTls,
        Some("port 465 usually needs security = \"tls\""),
    );
    let auth = "permanent error (535): 5.7.8 bad";
    check(
        auth,
        (Some(535), false, false),
        587,
        S::StartTls,
        Some("check username and password_file"),
    );
    let refused = "Connection refused (os error 111)";
    check(
        refused,
        (None, true, false),
        25,
        S::None,
        Some("is the mail server running at mail.lan:25?"),
    );
    let cert = "invalid peer certificate: UnknownIssuer";
    check(
        cert,
        plain,
        587,
        S::StartTls,
        Some("set ca_file to your CA certificate"),
    );
    let dns = "failed to lookup address information: Name or service not known";
    let dns_hint = "the name \"mail.lan\" does not resolve: check [smtp] host";
    check(dns, plain, 587, S::StartTls, Some(dns_hint));
    let starttls = "permanent error (530): 5.7.0 Must issue a STARTTLS command first";
    let starttls_hint = "the server wants STARTTLS first: set security = \"starttls\"";
    check(
        starttls,
        (Some(530), false, false),
        587,
        S::None,
        Some(starttls_hint),
    );
    let tls_hint = "the server does not speak TLS here: check port and security";
    check(tls_garbage, plain, 993, S::Tls, Some(tls_hint));
    let no_mech = "internal client error: No compatible authentication mechanism was found";
    let after_starttls = "the server offers no login on this connection; most offer it only after STARTTLS: set security = \"starttls\"";
    check(no_mech, plain, 25, S::None, Some(after_starttls));
    check(
        no_mech,
        plain,
        465,
        S::Tls,
        Some("the server offers no login method watermeter knows (PLAIN, LOGIN)"),
    );
    let hung_up = "response error: incomplete response";
    let hung_up_hint = "the server hung up: if it expects TLS from the first byte (often port 465), set security = \"tls\"";
    check(hung_up, plain, 2465, S::StartTls, Some(hung_up_hint));
    let other = "permanent error (550): mailbox unavailable";
    check(other, (Some(550), false, false), 25, S::None, None);
}
