//! The email channel: SMTP through lettre + rustls, the only module that names SMTP.
//!
//! [`Mailer`] turns a [`Notification`] into a MIME message (Date and Message-ID from
//! the mail, plain text with an optional HTML alternative) and hands it to the
//! configured server. Errors keep the server's exact words and add a hint that names
//! the likely fix ([`MailError`]). Deciding what to send and when is not done here.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::{header::ContentType, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpSecurity};

use crate::alert::message::{address_domain, message_id};
use crate::alert::{Channel, Notification, Sending};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a whole send may take. lettre's own timeout covers only connecting: a
/// server that stops answering mid-session would otherwise hold the outbox forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong, coarsely; the words are in [`MailError::detail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailErrorKind {
    /// `[smtp]` cannot work as written (address, `ca_file`).
    Config,
    /// The mail could not be built (a header the server would reject).
    Message,
    /// Connecting, DNS, TLS, timeouts: nothing the server said.
    Connection,
    /// The server answered with an error code.
    Rejected,
}

/// A failed send: the exact error text plus a hint at the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct MailError {
    pub kind: MailErrorKind,
    /// `host:port`.
    pub server: String,
    /// The exact error, including the server's reply when there was one.
    pub detail: String,
    /// The SMTP reply code, e.g. 535.
    pub code: Option<u16>,
    pub hint: Option<String>,
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mail through {}: {}", self.server, self.detail)?;
        match &self.hint {
            Some(hint) => write!(f, " (hint: {hint})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for MailError {}

/// Sends mails through the `[smtp]` server. Cheap to share; connects per mail.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    host: String,
    port: u16,
    security: SmtpSecurity,
    /// The channel's name: `email`, or a `[[notify]]` name of kind email.
    name: String,
}

impl fmt::Debug for Mailer {
    // By hand: the transport holds the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &format_args!("{}:{}", self.host, self.port))
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Check the addresses, read `ca_file` and set up the transport (no connection yet).
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer, MailError> {
        let config_error = |detail: String, hint: &str| MailError {
            kind: MailErrorKind::Config,
            server: format!("{}:{}", cfg.host, cfg.port),
            detail,
            code: None,
            hint: Some(hint.to_owned()),
        };
        let parse = |key: &str, addr: &str| {
            addr.parse::<Mailbox>().map_err(|e| {
                config_error(
                    format!("[smtp] {key} = {addr:?} is not a mail address: {e}"),
                    "write it as \"pi@example.org\" or \"watermeter <pi@example.org>\"",
                )
            })
        };
        let from = parse("from", &cfg.from)?;
        let to = cfg
            .to
            .iter()
            .map(|a| parse("to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(config_error(
                "[smtp] to is empty".into(),
                "name at least one recipient",
            ));
        }
        let tls = tls_parameters(cfg).map_err(|(detail, hint)| config_error(detail, hint))?;
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
                .port(cfg.port)
                .timeout(Some(CONNECT_TIMEOUT));
        builder = match (cfg.security, tls) {
            (SmtpSecurity::Tls, Some(p)) => builder.tls(Tls::Wrapper(p)),
            (SmtpSecurity::StartTls, Some(p)) => builder.tls(Tls::Required(p)),
            _ => builder.tls(Tls::None),
        };
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
            host: cfg.host.clone(),
            port: cfg.port,
            security: cfg.security,
            name: "email".into(),
        })
    }

    /// The same mailer under another channel name (`[[notify]] kind = "email"`).
    pub fn named(mut self, name: &str) -> Mailer {
        self.name = name.to_string();
        self
    }

    /// Send one mail; `Ok` once the server accepted it.
    pub async fn send(&self, mail: &Notification) -> Result<(), MailError> {
        let message = self.build(mail).map_err(|e| MailError {
            kind: MailErrorKind::Message,
            server: self.server(),
            detail: format!("building the mail failed: {e}"),
            code: None,
            hint: None,
        })?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> MailError {
        let detail = format!(
            "the server did not finish answering within {} s",
            SEND_TIMEOUT.as_secs()
        );
        let facts = ErrorFacts {
            code: None,
            refused: false,
            timeout: true,
            text: &detail,
        };
        MailError {
            kind: MailErrorKind::Connection,
            server: self.server(),
            hint: hint(&facts, &self.host, self.port, self.security),
            code: None,
            detail,
        }
    }

    fn build(&self, mail: &Notification) -> Result<Message, lettre::error::Error> {
        let date = u64::try_from(mail.created_ms).map_or_else(
            |_| SystemTime::now(),
            |ms| UNIX_EPOCH + Duration::from_millis(ms),
        );
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .date(date)
            .message_id(Some(mail.message_id.clone()));
        for to in &self.to {
            b = b.to(to.clone());
        }
        match &mail.html {
            Some(html) => b.multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                html.clone(),
            )),
            None => b.header(ContentType::TEXT_PLAIN).body(mail.text.clone()),
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> MailError {
        let detail = error_chain(e);
        let facts = ErrorFacts {
            code: e.status().map(u16::from),
            refused: io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused),
            timeout: e.is_timeout() || io_kind(e) == Some(std::io::ErrorKind::TimedOut),
            text: &detail,
        };
        MailError {
            kind: if facts.code.is_some() {
                MailErrorKind::Rejected
            } else {
                MailErrorKind::Connection
            },
            server: self.server(),
            hint: hint(&facts, &self.host, self.port, self.security),
            code: facts.code,
            detail,
        }
    }
}

impl Channel for Mailer {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> Sending<'a> {
        Box::pin(async move {
            Mailer::send(self, notification)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Send one test mail (`watermeter test-email`); `Ok` says where it went.
pub async fn test_email(cfg: &SmtpConfig) -> Result<String, MailError> {
    let mailer = Mailer::new(cfg)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mail = Notification {
        alert: String::new(),
        created_ms: now,
        message_id: message_id("test", "test", now, &address_domain(&cfg.from)),
        subject: "[watermeter] test mail".into(),
        text: format!(
            "This is a test mail from watermeter, sent through {}:{} (security = \"{}\").\n\
             If you can read it, alert mails will reach you.\n",
            cfg.host,
            cfg.port,
            security_name(cfg.security)
        ),
        html: None,
        link: None,
        channels: Vec::new(),
        facts: Default::default(),
    };
    mailer.send(&mail).await?;
    Ok(format!(
        "test mail sent to {} through {}:{} (security = \"{}\")",
        cfg.to.join(", "),
        cfg.host,
        cfg.port,
        security_name(cfg.security)
    ))
}

pub fn security_name(s: SmtpSecurity) -> &'static str {
    match s {
        SmtpSecurity::StartTls => "starttls",
        SmtpSecurity::Tls => "tls",
        SmtpSecurity::None => "none",
    }
}

/// `None` for `security = "none"`; an error is (detail, hint).
fn tls_parameters(cfg: &SmtpConfig) -> Result<Option<TlsParameters>, (String, &'static str)> {
    if cfg.security == SmtpSecurity::None {
        return Ok(None);
    }
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.ca_file {
        const FIX: &str = "point ca_file at a PEM file with your CA certificate";
        let pem = std::fs::read(path).map_err(|e| {
            (
                format!("[smtp] ca_file {}: cannot read it: {e}", path.display()),
                FIX,
            )
        })?;
        let bad = |why: String| (format!("[smtp] ca_file {}: {why}", path.display()), FIX);
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(bad("no PEM certificate in it".into()));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().map(Some).map_err(|e| {
        (
            format!("[smtp] setting up TLS failed: {e}"),
            "check ca_file",
        )
    })
}

/// What the hint depends on, separated from lettre so it can be tested.
#[derive(Debug, Clone, Copy)]
pub struct ErrorFacts<'a> {
    pub code: Option<u16>,
    pub refused: bool,
    pub timeout: bool,
    /// The whole error text, lower or upper case as the server wrote it.
    pub text: &'a str,
}

/// The most likely fix for a failed send, most specific first.
pub fn hint(f: &ErrorFacts, host: &str, port: u16, security: SmtpSecurity) -> Option<String> {
    let text = f.text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let h = match (f.code, security) {
        (Some(535), _) => "check username and password_file",
        (Some(530), SmtpSecurity::None) if has(&["starttls"]) => {
            "the server wants STARTTLS first: set security = \"starttls\""
        }
        (Some(530), _) => "the server wants a login: set username and password_file",
        _ if f.refused => return Some(format!("is the mail server running at {host}:{port}?")),
        _ if has(&[
            "lookup address",
            "name or service not known",
            "no address associated",
            "nodename nor servname",
            "name resolution",
        ]) =>
        {
            return Some(format!("the name {host:?} does not resolve: check [smtp] host"))
        }
        _ if port == 587 && security == SmtpSecurity::Tls => {
            "port 587 usually needs security = \"starttls\""
        }
        _ if port == 465 && security == SmtpSecurity::StartTls => {
            "port 465 usually needs security = \"tls\""
        }
        _ if has(&["notvalidforname", "not valid for name"]) => {
            return Some(format!(
                "the server's certificate is not issued for {host:?}: set host to the name on the certificate"
            ))
        }
        _ if has(&["certificate", "unknownissuer", "badsignature"]) => {
            "set ca_file to your CA certificate"
        }
        (_, SmtpSecurity::None) if has(&["authentication mechanism"]) => {
            "the server offers no login on this connection; most offer it only after STARTTLS: set security = \"starttls\""
        }
        _ if has(&["authentication mechanism"]) => {
            "the server offers no login method watermeter knows (PLAIN, LOGIN)"
        }
        _ if f.timeout => {
            "the server did not answer in time: check host, port and security (465 usually needs \"tls\", 587 \"starttls\")"
        }
        _ if has(&["corrupt message", "invalidcontenttype", "wrong version"]) => {
            "the server does not speak TLS here: check port and security"
        }
        (_, SmtpSecurity::StartTls | SmtpSecurity::None) if has(&["incomplete response"]) => {
            "the server hung up: if it expects TLS from the first byte (often port 465), set security = \"tls\""
        }
        _ => return None,
    };
    Some(h.to_owned())
}

/// The error and every source below it that adds words, without lettre's repeats
/// ("Connection error: Connection error: …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let words = s.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = s.source();
    }
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
#[path = "email_tests.rs"]
mod tests;
