//! `kind = "budget"`: water (or money, with a `[tariff]`) per day, week or month.
//! It notifies once as the period's use crosses each of its `levels` (75 % and
//! 100 % by default) and starts again quietly when the period ends: a budget
//! never "resolves". Weeks begin on Monday; every period begins at local midnight.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use chrono_tz::Tz;

use super::{need, AlertKind, KindDef, Levels};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::words::liters;

pub const DEF: KindDef = KindDef {
    name: "budget",
    title: "A budget for the day, week or month",
    keys: &["period", "limit_liters", "limit_cost", "levels"],
    example: r#"period = "month"
limit_liters = 4000"#,
    read,
};

/// The levels when the config names none, in percent of the limit.
pub const DEFAULT_LEVELS: [f64; 2] = [75.0, 100.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// "today", "this week", "this month".
    pub fn this(self) -> &'static str {
        match self {
            Period::Day => "today",
            Period::Week => "this week",
            Period::Month => "this month",
        }
    }

    /// "daily", "weekly", "monthly".
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
        }
    }

    /// The local start of the period holding `now_ms`, and of the next one.
    pub fn bounds(self, now_ms: i64, tz: Tz) -> (i64, i64) {
        let today = tz
            .timestamp_millis_opt(now_ms)
            .single()
            .map(|d| d.date_naive())
            .unwrap_or_default();
        let (first, next) = match self {
            Period::Day => (today, today.succ_opt()),
            Period::Week => {
                let monday = crate::buckets::monday_of(today);
                (monday, monday.checked_add_days(chrono::Days::new(7)))
            }
            Period::Month => {
                let first = crate::buckets::first_of_month(today);
                (first, first.checked_add_months(chrono::Months::new(1)))
            }
        };
        let start = crate::buckets::day_start(tz, first);
        let end = next.map_or(i64::MAX, |d| crate::buckets::day_start(tz, d));
        (start, end)
    }
}

/// What the budget counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Liters(f64),
    /// Water and sewage at the `[tariff]`'s prices, without the fixed charge.
    Cost(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub period: Period,
    pub limit: Limit,
    /// Percent of the limit, ascending.
    pub levels: Vec<f64>,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    need(s, problems, DEF.name, "period", "\"month\"");
    let period = s.parsed(problems, "period", |p| match p {
        "day" => Ok(Period::Day),
        "week" => Ok(Period::Week),
        "month" => Ok(Period::Month),
        other => Err(format!(
            "\"{other}\" is not a budget period; use \"day\", \"week\" or \"month\""
        )),
    });
    let limit = match (s.has("limit_liters"), s.has("limit_cost")) {
        (true, true) => {
            s.bad(
                problems,
                "limit_cost",
                "give either limit_liters or limit_cost, not both; a budget counts one of them",
            );
            None
        }
        (false, false) => {
            s.missing(
                problems,
                "limit_liters",
                "a budget alert needs a limit, such as limit_liters = 4000 (or limit_cost = 30 with a [tariff])",
            );
            None
        }
        (true, false) => positive(s, problems, "limit_liters", "4000").map(Limit::Liters),
        (false, true) => positive(s, problems, "limit_cost", "30").map(Limit::Cost),
    };
    let levels = if s.has("levels") {
        let levels = s.numbers(problems, "levels")?;
        let ascending = levels.windows(2).all(|w| w[0] < w[1]);
        let in_range = levels.iter().all(|l| *l > 0.0 && *l <= 1000.0);
        if levels.is_empty() || levels.len() > 10 || !ascending || !in_range {
            s.bad(
                problems,
                "levels",
                "must be 1 to 10 percentages above 0 and at most 1000, ascending, such as [75, 100]",
            );
            return None;
        }
        levels
    } else {
        DEFAULT_LEVELS.to_vec()
    };
    Some(Arc::new(Budget {
        period: period?,
        limit: limit?,
        levels,
    }))
}

fn positive(s: &Settings, problems: &mut Vec<Problem>, key: &str, example: &str) -> Option<f64> {
    let x = s.number(problems, key)?;
    if x > 0.0 {
        Some(x)
    } else {
        s.bad(
            problems,
            key,
            format!("{x} must be more than 0, such as {key} = {example}"),
        );
        None
    }
}

impl Budget {
    /// What the period has used so far: liters, or money with the tariff.
    /// `None` for a cost budget without a tariff (the config check refuses that).
    pub fn used(&self, meter: &str, usage: &dyn UsageView, now_ms: i64, tz: Tz) -> Option<f64> {
        let (start, _) = self.period.bounds(now_ms, tz);
        // The view's ranges are (from, to]: the period's first millisecond counts.
        let liters_in = |from: i64, to: i64| usage.liters_between(meter, from - 1, to);
        match self.limit {
            Limit::Liters(_) => Some(liters_in(start, now_ms)),
            Limit::Cost(_) => {
                let t = usage.tariff()?;
                // The view's (a - 1, b - 1] is [a, b).
                let cost = crate::tariff::cost_between(t, tz, start, now_ms + 1, |a, b| {
                    Ok::<_, std::convert::Infallible>(usage.liters_between(meter, a - 1, b - 1))
                });
                cost.ok()
            }
        }
    }

    fn limit_value(&self) -> f64 {
        match self.limit {
            Limit::Liters(l) | Limit::Cost(l) => l,
        }
    }

    /// An amount in the budget's unit: "760 L", "12.40 EUR".
    fn amount(&self, x: f64, currency: &str) -> String {
        match self.limit {
            Limit::Liters(_) => liters(x),
            Limit::Cost(_) => format!("{x:.2} {currency}").trim_end().to_string(),
        }
    }

    /// "760 L of 1000 L this week": the use behind a percentage of the limit.
    pub fn words(&self, percent: f64, currency: &str) -> String {
        let limit = self.limit_value();
        format!(
            "{} of {} {}",
            self.amount(percent / 100.0 * limit, currency),
            self.amount(limit, currency),
            self.period.this()
        )
    }
}

impl AlertKind for Budget {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn unit(&self) -> &'static str {
        "%"
    }

    fn measure(
        &self,
        meter: &str,
        usage: &dyn UsageView,
        now_ms: i64,
        tz: Tz,
        _firing_since_ms: Option<i64>,
    ) -> Measurement {
        let used = self.used(meter, usage, now_ms, tz).unwrap_or(0.0);
        let percent = used / self.limit_value() * 100.0;
        Measurement {
            value: percent,
            breached: self.levels.first().is_some_and(|l| percent >= *l),
        }
    }

    fn resolve_hold(&self) -> Duration {
        Duration::ZERO
    }

    fn levels(&self, now_ms: i64, tz: Tz) -> Option<Levels> {
        Some(Levels {
            period_start_ms: self.period.bounds(now_ms, tz).0,
            percents: self.levels.clone(),
            range: match self.period {
                Period::Day => "day",
                Period::Week => "week",
                Period::Month => "month",
            },
            key: format!("{:?} {:?}", self.limit, self.levels),
        })
    }

    fn detail(&self, _meter: &str, usage: &dyn UsageView, _now_ms: i64, _tz: Tz) -> Option<String> {
        usage.tariff().map(|t| t.currency.clone())
    }

    fn summary(&self, meter: &str, value: f64, _resolved: bool, detail: Option<&str>) -> String {
        format!(
            "{meter}: {:.0} % of the {} budget, {}",
            value.floor(),
            self.period.adjective(),
            self.words(value, detail.unwrap_or(""))
        )
    }

    fn describe(&self) -> String {
        let levels: Vec<String> = self.levels.iter().map(|l| format!("{l} %")).collect();
        let limit = match self.limit {
            Limit::Liters(l) => format!("{l} L"),
            Limit::Cost(c) => format!("{c} in water and sewage charges"),
        };
        format!(
            "a {} budget of {limit}; notifies at {}",
            self.period.adjective(),
            levels.join(" and ")
        )
    }

    fn tells_run(&self) -> bool {
        false
    }

    fn progress(&self, value: f64, currency: &str) -> Option<String> {
        Some(self.words(value, currency))
    }
}
