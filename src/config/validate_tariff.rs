//! `[tariff]`: prices for the cost beside liters (CONTRACT.md's shape).

use super::reader::{Problems, Table};
use super::{TariffConfig, Tier, TiersPeriod};

const KEYS: &[&str] = &[
    "currency",
    "price_per_m3",
    "sewage_per_m3",
    "fixed_per_month",
    "tiers",
    "tiers_period",
];

pub(super) fn tariff(root: &Table<'_, '_>, problems: &mut Problems) -> Option<TariffConfig> {
    let t = root.table(problems, "tariff")?;
    t.check_keys(problems, KEYS);
    let currency = match t.string(problems, "currency") {
        Some(f) if f.value.len() == 3 && f.value.chars().all(|c| c.is_ascii_uppercase()) => {
            Some(f.value.to_string())
        }
        Some(f) => {
            problems.bad(&f, format!("\"{}\" is not a currency code; write the three capital letters of ISO 4217, such as \"EUR\"", f.value));
            None
        }
        None => {
            if !t.has("currency") {
                t.missing(
                    problems,
                    "currency",
                    "write the currency code to show, such as currency = \"EUR\"",
                );
            }
            None
        }
    };
    let price = |key: &str, problems: &mut Problems| -> f64 {
        match t.number(problems, key) {
            Some(f) if f.value < 0.0 => {
                problems.bad(&f, format!("{} is negative; a price is 0 or more", f.value));
                0.0
            }
            Some(f) => f.value,
            None => 0.0,
        }
    };
    let price_per_m3 = price("price_per_m3", problems);
    let sewage_per_m3 = price("sewage_per_m3", problems);
    let fixed_per_month = price("fixed_per_month", problems);
    let mut tiers = Vec::new();
    for (i, tier) in t.tables(problems, "tiers").iter().enumerate() {
        tier.check_keys(problems, &["up_to_m3", "price_per_m3"]);
        let up_to = tier.number(problems, "up_to_m3");
        let p = tier.number(problems, "price_per_m3");
        if p.is_none() && !tier.has("price_per_m3") {
            tier.missing(
                problems,
                "price_per_m3",
                "every tier needs its price, such as price_per_m3 = 2.10",
            );
        }
        let p = match p {
            Some(f) if f.value < 0.0 => {
                problems.bad(&f, format!("{} is negative; a price is 0 or more", f.value));
                continue;
            }
            Some(f) => f.value,
            None => continue,
        };
        let previous = tiers.last().map(|t: &Tier| t.up_to_m3);
        match (&up_to, previous) {
            (_, Some(None)) => {
                problems.add(tier.span.as_ref(), &tier.key_path("up_to_m3"), "follows a tier without up_to_m3, which already covers every volume; only the last tier may leave out up_to_m3");
                continue;
            }
            (Some(f), Some(Some(before))) if f.value <= before => {
                problems.bad(
                    f,
                    format!(
                        "{} overlaps the tier before it (up to {before} m³); tiers go up in order",
                        f.value
                    ),
                );
                continue;
            }
            (Some(f), _) if f.value <= 0.0 => {
                problems.bad(f, "must be more than 0 m³");
                continue;
            }
            _ => {}
        }
        let _ = i;
        tiers.push(Tier {
            up_to_m3: up_to.map(|f| f.value),
            price_per_m3: p,
        });
    }
    let tiers_period = match t.string(problems, "tiers_period") {
        None => TiersPeriod::Year,
        Some(f) if f.value == "year" => TiersPeriod::Year,
        Some(f) if f.value == "month" => TiersPeriod::Month,
        Some(f) => {
            problems.bad(
                &f,
                format!(
                    "\"{}\" is not a tier period; use \"year\" or \"month\"",
                    f.value
                ),
            );
            TiersPeriod::Year
        }
    };
    Some(TariffConfig {
        currency: currency?,
        price_per_m3,
        sewage_per_m3,
        fixed_per_month,
        tiers,
        tiers_period,
    })
}
