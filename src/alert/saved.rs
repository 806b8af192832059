//! Alerts made on the alerts page, beside the config file's, and the [`RuleSet`]
//! the engine and the pages share.
//!
//! A browser-made alert is kept as the `[[alert]]` table its form makes (TOML
//! text) and is checked by the same code as the config file's alerts
//! ([`crate::config::parse_alert`] with the kinds' check), so the page gives
//! `check-config`'s messages. It is checked again at every start against the
//! config of that start: one that no longer fits (its meter was removed, a
//! config alert took its name) stays stored and is shown with the reason, but
//! does not run. The store keeps it under its own key family (`persist.rs`).

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::kinds::{self, Rule};
use crate::config::{Config, Problem};

/// An alert as the alerts page stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedAlert {
    pub name: String,
    /// The `[[alert]]` table, as TOML text.
    pub toml: String,
    /// Paused: kept, shown, not evaluated.
    #[serde(default)]
    pub paused: bool,
    /// When it was last saved.
    pub changed_ms: i64,
}

/// What the alerts page's form holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertForm {
    pub name: String,
    pub meter: String,
    pub kind: String,
    /// Empty: the default (4 h).
    pub repeat: String,
    /// Channel names separated by commas or spaces; empty: all.
    pub notify: String,
    /// The kind's own keys, one `key = value` per line, as in the config file.
    pub keys: String,
}

impl AlertForm {
    /// The `[[alert]]` table this form describes.
    pub fn to_toml(&self) -> String {
        let mut t = String::from("[[alert]]\n");
        t.push_str(&format!("name = {}\n", quote(self.name.trim())));
        t.push_str(&format!("meter = {}\n", quote(self.meter.trim())));
        t.push_str(&format!("kind = {}\n", quote(self.kind.trim())));
        if !self.repeat.trim().is_empty() {
            t.push_str(&format!("repeat = {}\n", quote(self.repeat.trim())));
        }
        let channels: Vec<String> = self
            .notify
            .split([',', ' '])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(quote)
            .collect();
        if !channels.is_empty() {
            t.push_str(&format!("notify = [{}]\n", channels.join(", ")));
        }
        for line in self.keys.lines().map(str::trim).filter(|l| !l.is_empty()) {
            t.push_str(line);
            t.push('\n');
        }
        t
    }

    /// The form that makes `toml` again (for editing), read leniently: the text
    /// was checked when it was saved.
    pub fn from_toml(toml: &str) -> AlertForm {
        let mut form = AlertForm::default();
        let mut keys = Vec::new();
        for line in toml.lines().skip_while(|l| l.trim() == "[[alert]]") {
            // A line without "=" (the rest of a list, a comment) stays as written.
            let Some((key, value)) = line.split_once('=') else {
                keys.push(line.trim().to_string());
                continue;
            };
            let unquoted = || unquote(value.trim());
            match key.trim() {
                "name" => form.name = unquoted(),
                "meter" => form.meter = unquoted(),
                "kind" => form.kind = unquoted(),
                "repeat" => form.repeat = unquoted(),
                "notify" => {
                    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
                    let names: Vec<String> = inner.split(',').map(|c| unquote(c.trim())).collect();
                    form.notify = names.join(", ");
                }
                _ => keys.push(line.trim().to_string()),
            }
        }
        form.keys = keys.join("\n");
        form
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of a basic string that [`quote`] wrote (escapes undone).
fn unquote(s: &str) -> String {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The rule of `toml` checked against `config`; `taken` are the other alerts' names.
pub fn rule_of(toml: &str, config: &Config, taken: &[&str]) -> Result<Rule, Vec<Problem>> {
    let alert = crate::config::parse_alert(toml, config, taken, &kinds::check)?;
    let mut one = config.clone();
    one.alerts = vec![alert];
    kinds::rules(&one).pop().ok_or_else(|| {
        vec![Problem {
            line: None,
            key: "alert[0].kind".into(),
            message: "the alert's kind could not be read".into(),
        }]
    })
}

/// One browser-made alert and whether it runs.
#[derive(Debug, Clone)]
pub struct Saved {
    pub alert: SavedAlert,
    /// The rule, or why it does not run under this config.
    pub rule: Result<Rule, String>,
}

/// Every alert: the config file's (fixed for the process) and the browser-made
/// ones (changed by the alerts page). The engine evaluates [`RuleSet::active`].
#[derive(Debug, Default)]
pub struct RuleSet {
    config: Vec<Rule>,
    saved: RwLock<Vec<Saved>>,
    active: RwLock<Arc<Vec<Rule>>>,
    /// Held by a change from reading the list to storing it and [`RuleSet::set_saved`].
    edits: Mutex<()>,
    /// Woken when the browser-made alerts change (the evaluator checks at once).
    pub changed: Notify,
}

impl RuleSet {
    /// The config's rules, and the stored browser-made alerts checked against `config`.
    pub fn new(config: &Config, stored: Vec<SavedAlert>) -> RuleSet {
        let config_rules = kinds::rules(config);
        let set = RuleSet {
            config: config_rules,
            ..RuleSet::default()
        };
        let mut checked: Vec<Saved> = Vec::new();
        for alert in stored {
            let mut taken = set.config_names();
            taken.extend(checked.iter().map(|s| s.alert.name.clone()));
            let taken: Vec<&str> = taken.iter().map(String::as_str).collect();
            let rule = rule_of(&alert.toml, config, &taken).map_err(|problems| {
                let words = problem_words(&problems, &alert.toml);
                tracing::warn!(alert = %alert.name, "a browser-made alert does not run: {}", words.join("; "));
                words.join("; ")
            });
            checked.push(Saved { alert, rule });
        }
        set.set_saved(checked);
        set
    }

    /// The rules to evaluate: the config's, then the browser-made ones that are
    /// valid and not paused.
    pub fn active(&self) -> Arc<Vec<Rule>> {
        self.active.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// Serialises changes: hold it from reading [`RuleSet::saved`] until
    /// [`RuleSet::set_saved`], so two forms sent at once do not undo each other.
    pub fn lock_edits(&self) -> MutexGuard<'_, ()> {
        self.edits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The config file's alerts.
    pub fn config_rules(&self) -> &[Rule] {
        &self.config
    }

    /// The browser-made alerts, in name order.
    pub fn saved(&self) -> Vec<Saved> {
        self.saved.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The names of the config file's alerts.
    pub fn config_names(&self) -> Vec<String> {
        self.config.iter().map(|r| r.name.clone()).collect()
    }

    /// Replaces the browser-made alerts (after the store took the change) and
    /// wakes the evaluator.
    pub fn set_saved(&self, mut saved: Vec<Saved>) {
        saved.sort_by(|a, b| a.alert.name.cmp(&b.alert.name));
        let mut active = self.config.clone();
        active.extend(
            saved
                .iter()
                .filter(|s| !s.alert.paused)
                .filter_map(|s| s.rule.as_ref().ok().cloned()),
        );
        if let Ok(mut a) = self.active.write() {
            *a = Arc::new(active);
        }
        if let Ok(mut s) = self.saved.write() {
            *s = saved;
        }
        self.changed.notify_one();
    }
}

/// The problems of the form's `toml` as the alerts page says them: "window: …"
/// (the key without `alert[0].`), or for a line that is not valid TOML, that
/// line as the owner wrote it; each once (one bad line can give two).
pub fn problem_words(problems: &[Problem], toml: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in problems {
        let key = p.key.strip_prefix("alert[0].").unwrap_or(&p.key);
        let line = p
            .line
            .and_then(|n| toml.lines().nth(n.saturating_sub(1)))
            .map(str::trim)
            .filter(|l| !l.is_empty());
        let words = match (key.is_empty(), line) {
            (false, _) => format!("{key}: {}", p.message),
            (true, Some(l)) => format!(
                "the line “{l}”: {}",
                p.message.replace(
                    "; fix the syntax on this line",
                    "; write a text in quotes, such as window = \"1h\""
                )
            ),
            (true, None) => p.message.clone(),
        };
        if !out.contains(&words) {
            out.push(words);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[[meter]]\nid = \"main\"\n[[alert]]\nname = \"from the file\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"\n[[notify]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"https://ntfy.example.org/t\"\n";

    fn config() -> Config {
        kinds::parse_config(CONFIG, std::path::Path::new("/etc/watermeter/config.toml"))
            .expect("valid config")
    }

    fn form(name: &str, keys: &str) -> AlertForm {
        AlertForm {
            name: name.into(),
            meter: "main".into(),
            kind: "volume".into(),
            repeat: String::new(),
            notify: "phone".into(),
            keys: keys.into(),
        }
    }

    #[test]
    fn a_form_becomes_toml_and_back_with_any_name() {
        let f = form(
            "Über \"100\" L \\ hour = [!]",
            "window = \"1h\"\nthreshold_liters = 100",
        );
        let toml = f.to_toml();
        assert_eq!(AlertForm::from_toml(&toml), f);
        let rule = rule_of(&toml, &config(), &[]).expect("valid");
        assert_eq!(rule.name, "Über \"100\" L \\ hour = [!]");
        assert_eq!(rule.notify, vec!["phone".to_string()]);
        // A line break would become a header's line break: refused, with a reason.
        let two_lines = form("a\nb", "window = \"1h\"\nthreshold_liters = 100");
        let problems = rule_of(&two_lines.to_toml(), &config(), &[]).unwrap_err();
        assert!(problem_words(&problems, "")[0].starts_with("name: must be one line"));
    }

    #[test]
    fn a_line_that_is_not_toml_is_named_as_written_and_said_once() {
        let toml = form("x", "window = 1 hour\nthreshold_liters = 100").to_toml();
        let problems = rule_of(&toml, &config(), &[]).unwrap_err();
        let words = problem_words(&problems, &toml);
        assert_eq!(words.len(), 1, "{words:?}");
        assert!(
            words[0].starts_with("the line “window = 1 hour”: "),
            "{words:?}"
        );
        assert!(words[0].contains("in quotes"), "{words:?}");
    }

    #[test]
    fn the_form_gets_check_configs_words_and_names_stay_unique() {
        let c = config();
        let problems = rule_of(&form("x", "window = \"1h\"").to_toml(), &c, &[]).unwrap_err();
        let words = problem_words(&problems, "");
        assert_eq!(
            words,
            vec!["threshold_liters: `threshold_liters` is missing; a volume alert needs it, such as threshold_liters = 100"]
        );
        let toml = form("from the file", "window = \"1h\"\nthreshold_liters = 1").to_toml();
        let problems = rule_of(&toml, &c, &["from the file"]).unwrap_err();
        assert!(problem_words(&problems, "")[0].starts_with("name: another alert is already named"));
        let bad_channel = AlertForm {
            notify: "pager".into(),
            ..form("y", "window = \"1h\"\nthreshold_liters = 1")
        };
        let problems = rule_of(&bad_channel.to_toml(), &c, &[]).unwrap_err();
        assert!(problems[0]
            .message
            .contains("there is no channel \"pager\""));
        let sneaky = form(
            "z",
            "window = \"1h\"\nthreshold_liters = 1\n[smtp]\nhost = \"evil\"",
        );
        assert!(rule_of(&sneaky.to_toml(), &c, &[]).is_err());
        let second = "window = \"1h\"\nthreshold_liters = 1\n[[alert]]\nname = \"w\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"";
        let problems = rule_of(&form("z", second).to_toml(), &c, &[]).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.message.starts_with("one alert at a time")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_rule_set_runs_valid_unpaused_alerts_after_the_configs() {
        let c = config();
        let saved = |name: &str, paused: bool, keys: &str| SavedAlert {
            name: name.into(),
            toml: form(name, keys).to_toml(),
            paused,
            changed_ms: 0,
        };
        let set = RuleSet::new(
            &c,
            vec![
                saved("b", false, "window = \"1h\"\nthreshold_liters = 5"),
                saved("a", true, "window = \"1h\"\nthreshold_liters = 5"),
                saved(
                    "from the file",
                    false,
                    "window = \"1h\"\nthreshold_liters = 5",
                ),
            ],
        );
        let names: Vec<String> = set.active().iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, vec!["from the file", "b"]);
        let shown: Vec<(String, bool)> = set
            .saved()
            .iter()
            .map(|s| (s.alert.name.clone(), s.rule.is_ok()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("a".to_string(), true),
                ("b".to_string(), true),
                ("from the file".to_string(), false)
            ]
        );
    }
}
