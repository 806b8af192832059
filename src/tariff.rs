//! What water costs: `[tariff]`'s prices applied to liters. Pure.
//!
//! Water is priced per m³, marginally through the tiers as utilities bill: each
//! liter at the rate of the tier it falls in, counting the volume from the start of
//! the tier period (the local year or month). Sewage is added per m³ whatever the
//! tier. The fixed monthly charge is not in a bucket's cost; the dashboard adds it to
//! the month and the year (`fixed_for_months`). No currency conversion.

use crate::config::{TariffConfig, TiersPeriod};

/// The cost of `liters` that flowed after `before_liters` in the same tier period.
pub fn cost(t: &TariffConfig, before_liters: f64, liters: f64) -> f64 {
    let (from, to) = (before_liters / 1000.0, (before_liters + liters) / 1000.0);
    let water = if t.tiers.is_empty() {
        (to - from) * t.price_per_m3
    } else {
        let mut lower = 0.0;
        let mut sum = 0.0;
        for tier in &t.tiers {
            let upper = tier.up_to_m3.unwrap_or(f64::INFINITY);
            let overlap = (to.min(upper) - from.max(lower)).max(0.0);
            sum += overlap * tier.price_per_m3;
            lower = upper;
        }
        sum
    };
    water + (to - from) * t.sewage_per_m3
}

/// The cost of the water in `[from_ms, to_ms)`, each liter priced after what its
/// tier period held before `from_ms`. `liters(a, b)` reads the liters in `[a, b)`.
pub fn cost_between<E>(
    t: &TariffConfig,
    tz: chrono_tz::Tz,
    from_ms: i64,
    to_ms: i64,
    mut liters: impl FnMut(i64, i64) -> Result<f64, E>,
) -> Result<f64, E> {
    let before = liters(period_start(t, tz, from_ms), from_ms)?;
    Ok(cost(t, before, liters(from_ms, to_ms)?))
}

/// The fixed charge of `months` whole or started months.
pub fn fixed_for_months(t: &TariffConfig, months: f64) -> f64 {
    t.fixed_per_month * months
}

/// The local start of the tier period that contains `ts_ms`.
pub fn period_start(t: &TariffConfig, tz: chrono_tz::Tz, ts_ms: i64) -> i64 {
    use chrono::{Datelike, TimeZone};
    let local = tz
        .timestamp_millis_opt(ts_ms)
        .single()
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let first = match t.tiers_period {
        TiersPeriod::Year => local.with_day(1).and_then(|d| d.with_month(1)),
        TiersPeriod::Month => local.with_day(1),
    }
    .unwrap_or(local);
    crate::buckets::day_start(tz, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tier;

    fn tariff(tiers: Vec<Tier>) -> TariffConfig {
        TariffConfig {
            currency: "EUR".into(),
            price_per_m3: 2.0,
            sewage_per_m3: 1.5,
            fixed_per_month: 5.0,
            tiers,
            tiers_period: TiersPeriod::Year,
        }
    }

    #[test]
    fn a_flat_price_and_sewage_per_cubic_meter() {
        let t = tariff(Vec::new());
        assert!((cost(&t, 0.0, 1000.0) - 3.5).abs() < 1e-9);
        assert!((cost(&t, 50_000.0, 250.0) - 0.875).abs() < 1e-9);
        assert_eq!(fixed_for_months(&t, 12.0), 60.0);
    }

    #[test]
    fn tiers_price_each_liter_at_the_rate_of_the_tier_it_falls_in() {
        let t = tariff(vec![
            Tier {
                up_to_m3: Some(100.0),
                price_per_m3: 2.0,
            },
            Tier {
                up_to_m3: None,
                price_per_m3: 3.0,
            },
        ]);
        // 99.5 m³ already this year: 0.5 m³ at 2.00, then 1.5 m³ at 3.00, plus sewage.
        let c = cost(&t, 99_500.0, 2_000.0);
        assert!(
            (c - (0.5 * 2.0 + 1.5 * 3.0 + 2.0 * 1.5)).abs() < 1e-9,
            "{c}"
        );
        // Split or whole, the same money: marginal pricing is additive.
        let split = cost(&t, 99_500.0, 700.0) + cost(&t, 100_200.0, 1_300.0);
        assert!((split - c).abs() < 1e-9);
    }

    #[test]
    fn the_tier_period_starts_at_local_new_year_or_the_first_of_the_month() {
        let vienna = chrono_tz::Europe::Vienna;
        let mut t = tariff(Vec::new());
        let june = 1_748_736_000_000; // 2025-06-01T00:00:00Z
        assert_eq!(period_start(&t, vienna, june), 1_735_686_000_000); // 2025-01-01 00:00 CET
        t.tiers_period = TiersPeriod::Month;
        assert_eq!(period_start(&t, vienna, june), 1_748_728_800_000); // 2025-06-01 00:00 CEST
    }
}
