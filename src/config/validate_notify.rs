//! `[[notify]]`: the alert channels besides `[smtp]` (which alone is the channel
//! named `email`): `ntfy` (push to a phone through an ntfy server) and `webhook`
//! (a JSON POST), each with a name an alert's `notify = [...]` may use.
//!
//! Reads `token_file` now, so a bad setup shows at `check-config`; never quotes a
//! secret.

use std::path::Path;

use super::reader::{Problems, Table};
use super::{NotifyConfig, NotifyKind};

const KEYS: &[&str] = &["name", "kind", "url", "token_file", "priority"];

pub(super) fn notify(
    root: &Table<'_, '_>,
    base_dir: &Path,
    has_smtp: bool,
    problems: &mut Problems,
) -> Vec<NotifyConfig> {
    let mut out: Vec<NotifyConfig> = Vec::new();
    for t in root.tables(problems, "notify") {
        t.check_keys(problems, KEYS);
        let name = match t.string(problems, "name") {
            Some(f) if !super::values::is_valid_meter_id(f.value) => {
                problems.bad(&f, format!("\"{}\" is not a usable channel name; use lowercase letters, digits, `_` and `-`, such as \"phone\"", f.value));
                None
            }
            Some(f) if f.value == "email" || out.iter().any(|n| n.name == f.value) => {
                problems.bad(&f, format!("\"{}\" is already a channel's name ([smtp] is \"email\"); give every channel its own name", f.value));
                None
            }
            Some(f) => Some(f.value.to_string()),
            None => {
                if !t.has("name") {
                    t.missing(problems, "name", "name the channel, such as name = \"phone\", so an alert can say notify = [\"phone\"]");
                }
                None
            }
        };
        let kind = match t.string(problems, "kind") {
            Some(f) if ["ntfy", "webhook", "email"].contains(&f.value) => Some(f.value.to_string()),
            Some(f) => {
                problems.bad(
                    &f,
                    format!(
                        "\"{}\" is not a channel kind; use \"ntfy\", \"webhook\" or \"email\"",
                        f.value
                    ),
                );
                None
            }
            None => {
                if !t.has("kind") {
                    t.missing(problems, "kind", "use \"ntfy\", \"webhook\" or \"email\"");
                }
                None
            }
        };
        let url = match t.string(problems, "url") {
            Some(f) if f.value.starts_with("http://") || f.value.starts_with("https://") => {
                Some(f.value.to_string())
            }
            Some(f) => {
                problems.bad(&f, format!("\"{}\" is not an http:// or https:// address; write the topic URL, such as \"https://ntfy.sh/my-water-alerts\"", f.value));
                None
            }
            None => None,
        };
        let token = t.string(problems, "token_file").and_then(|f| {
            let path = base_dir.join(f.value);
            match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
                Ok(_) => {
                    problems.bad(&f, format!("{} is empty; write the access token into it", path.display()));
                    None
                }
                Err(err) => {
                    problems.bad(&f, format!("cannot read {} ({err}); create it holding only the token, or fix the path", path.display()));
                    None
                }
            }
        });
        let priority = match t.string(problems, "priority") {
            None => 3,
            Some(f) => match f.value {
                "min" | "1" => 1,
                "low" | "2" => 2,
                "default" | "3" => 3,
                "high" | "4" => 4,
                "urgent" | "max" | "5" => 5,
                other => {
                    problems.bad(&f, format!("\"{other}\" is not an ntfy priority; use \"min\", \"low\", \"default\", \"high\" or \"urgent\""));
                    3
                }
            },
        };
        let kind = match kind.as_deref() {
            Some("email") => {
                if !has_smtp {
                    t.missing(
                        problems,
                        "kind",
                        "an email channel sends through [smtp]; add an [smtp] table",
                    );
                }
                Some(NotifyKind::Email)
            }
            Some(k) => {
                if url.is_none() && !t.has("url") {
                    t.missing(
                        problems,
                        "url",
                        "write where to send, such as url = \"https://ntfy.sh/my-water-alerts\"",
                    );
                }
                url.map(|url| match k {
                    "ntfy" => NotifyKind::Ntfy {
                        url,
                        token,
                        priority,
                    },
                    _ => NotifyKind::Webhook { url, token },
                })
            }
            None => None,
        };
        if let (Some(name), Some(kind)) = (name, kind) {
            out.push(NotifyConfig { name, kind });
        }
    }
    out
}
