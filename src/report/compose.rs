//! The words of a report mail: subject, plain text and HTML. Pure.
//!
//! Both parts are written from one [`Outline`], so the plain text and the HTML
//! carry the same facts. The HTML is for mail clients, not browsers: tables for
//! layout, inline styles and `bgcolor` for the bars, no SVG, no images, no `<style>`
//! block. Gathers no figures and sends nothing; the [`Report`] arrives complete.
//! Past 400 lines because both writers stay beside the outline they share, and
//! the tests live here too.

use crate::words::{html_escape, liters, thousands};

use super::{Comparison, MeterReport, PerPerson, Report, ReportKind};

/// The longest plain-text bar, in characters.
const TEXT_BAR: usize = 30;
const BAR_COLOR: &str = "#0b63ce";
const COST_NOTE: &str = "Costs are for water and sewage, without the fixed charge.";

/// The subject, the plain-text part and the HTML part of `report`.
pub fn compose(report: &Report) -> (String, String, String) {
    let outline = Outline::new(report);
    let subject = format!("[watermeter] {}", outline.title);
    (subject, text(&outline), html(&outline))
}

/// What the mail says, before it is written as text or as HTML. Holds raw text:
/// only the HTML writer escapes.
struct Outline {
    /// "Weekly report: Week 48: …: 1,234 L, 4.56 EUR".
    title: String,
    headline: String,
    cost_note: bool,
    meters: Vec<MeterPart>,
    /// (when, what).
    alerts: Vec<(String, String)>,
    /// `<dashboard_url>/`.
    dashboard: Option<String>,
}

struct MeterPart {
    name: String,
    /// "1,234 L, 4.56 EUR".
    amount: String,
    link: Option<String>,
    /// (label, liters, change): "the week before", "1,400 L", "12 % less".
    comparisons: Vec<[String; 3]>,
    /// Whole sentences: per person, biggest days.
    notes: Vec<String>,
    days: Vec<Bar>,
    kinds: Vec<Bar>,
}

struct Bar {
    label: String,
    amount: String,
    /// "34 %", for kinds of use.
    share: Option<String>,
    /// Of the largest row, 0 to 1.
    fraction: f64,
}

impl Outline {
    fn new(r: &Report) -> Outline {
        let total = r.meters.iter().map(|m| m.liters).sum::<f64>();
        let cost = house_cost(r).map(|c| money(c, r.currency.as_deref()));
        let kind = match r.kind {
            ReportKind::Weekly => "Weekly report",
            ReportKind::Monthly => "Monthly report",
        };
        let amount = match &cost {
            Some(c) => format!("{}, {c}", liters(total)),
            None => liters(total),
        };
        // The title goes into a mail header: a line break there would end it early.
        let title = r.title.replace(['\r', '\n'], " ");
        let base = r.dashboard_url.as_deref().map(|u| u.trim_end_matches('/'));
        Outline {
            title: format!("{kind}: {title}: {amount}"),
            headline: headline(r, total, cost.as_deref()),
            cost_note: r.currency.is_some() && r.meters.iter().any(|m| m.cost.is_some()),
            meters: r
                .meters
                .iter()
                .map(|m| meter_part(m, r.currency.as_deref(), base))
                .collect(),
            alerts: r
                .alerts
                .iter()
                .map(|a| (a.at.clone(), a.text.clone()))
                .collect(),
            dashboard: base.map(|b| format!("{b}/")),
        }
    }
}

/// "Last week the house used 1,234 L (4.56 EUR), 12 % less than the week before."
fn headline(r: &Report, total: f64, cost: Option<&str>) -> String {
    let period = match r.kind {
        ReportKind::Weekly => "Last week",
        ReportKind::Monthly => "Last month",
    };
    let mut s = format!("{period} the house used {}", liters(total));
    if let Some(cost) = cost {
        s.push_str(&format!(" ({cost})"));
    }
    let comparison = house_comparison(r).filter(|(_, b)| b.is_finite() && total.is_finite());
    if let Some((label, before)) = comparison {
        s.push_str(&format!(", {}", versus(total, before, label)));
    }
    s.push('.');
    s
}

/// The whole house over the first comparison's period, when every meter knows it.
fn house_comparison(r: &Report) -> Option<(&str, f64)> {
    let label = r.meters.first()?.comparisons.first()?.label.as_str();
    let mut before = 0.0;
    for m in &r.meters {
        let c = m.comparisons.first().filter(|c| c.label == label)?;
        before += c.liters?;
    }
    Some((label, before))
}

/// "12 % less than the week before", for the headline.
fn versus(now: f64, before: f64, label: &str) -> String {
    match percent_change(now, before) {
        None => format!("after {} {label}", liters(before)),
        Some(0) => format!("about the same as {label}"),
        Some(p) if p > 0 => format!("{} % more than {label}", thousands(p)),
        Some(p) => format!("{} % less than {label}", thousands(p.saturating_neg())),
    }
}

/// "12 % more", "8 % less", "no data" (a sign and "less" would say it twice);
/// says so when the other period used nothing.
fn change(now: f64, before: Option<f64>) -> String {
    let Some(before) = before.filter(|b| b.is_finite()).filter(|_| now.is_finite()) else {
        return "no data".into();
    };
    match percent_change(now, before) {
        None if now > 0.0 => "no use then".into(),
        None => "the same".into(),
        Some(0) => "about the same".into(),
        Some(p) if p > 0 => format!("{} % more", thousands(p)),
        Some(p) => format!("{} % less", thousands(p.saturating_neg())),
    }
}

/// Whole percent from `before` to `now` (saturating); `None` when `before` is no
/// base (0, negative, NaN). `now` is finite.
fn percent_change(now: f64, before: f64) -> Option<i64> {
    (before > 0.0).then(|| ((now - before) / before * 100.0).round() as i64)
}

/// Every meter's cost summed; `None` unless all of them are known, as a sum of
/// some meters would pass for the house's.
fn house_cost(r: &Report) -> Option<f64> {
    r.currency.as_ref()?;
    if r.meters.is_empty() {
        return None;
    }
    r.meters.iter().map(|m| m.cost).sum()
}

fn money(amount: f64, currency: Option<&str>) -> String {
    format!("{amount:.2} {}", currency.unwrap_or_default())
        .trim_end()
        .to_string()
}

fn meter_part(m: &MeterReport, currency: Option<&str>, base: Option<&str>) -> MeterPart {
    let amount = match (m.cost, currency) {
        (Some(c), Some(_)) => format!("{}, {}", liters(m.liters), money(c, currency)),
        _ => liters(m.liters),
    };
    let notes = m.per_person.as_ref().map(per_person).into_iter();
    let mut kinds = m.kinds.clone();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Draws need not cover every liter, and rounding may make them cover more:
    // shares of the larger of the two never pass 100 %.
    let drawn = kinds.iter().map(|k| k.1).filter(|l| l.is_finite()).sum();
    MeterPart {
        name: m.name.clone(),
        amount,
        link: base.map(|b| format!("{b}/meters/{}", m.id)),
        comparisons: m
            .comparisons
            .iter()
            .map(|c| comparison(m.liters, c))
            .collect(),
        notes: notes.chain(biggest_days(&m.days)).collect(),
        days: bars(&m.days, None),
        kinds: bars(&kinds, Some(m.liters.max(drawn))),
    }
}

fn comparison(now: f64, c: &Comparison) -> [String; 3] {
    let amount = c.liters.map(liters).unwrap_or_default();
    [c.label.clone(), amount, change(now, c.liters)]
}

fn per_person(p: &PerPerson) -> String {
    let persons = match p.persons {
        1 => "1 person".to_string(),
        n => format!("{n} persons"),
    };
    format!(
        "Per person and day: {} ({persons}); the reference is {} ({}).",
        liters(p.liters),
        liters(p.reference_liters),
        p.reference
    )
}

/// "Biggest days: Tue 24 (312 L), Sat 28 (280 L), Sun 29 (250 L)."
fn biggest_days(days: &[(String, f64)]) -> Option<String> {
    let mut top: Vec<_> = days.iter().filter(|d| d.1 > 0.0).collect();
    // Stable: of equal days, the earlier is named first.
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(3);
    let list: Vec<_> = top
        .iter()
        .map(|(day, l)| format!("{day} ({})", liters(*l)))
        .collect();
    (!list.is_empty()).then(|| format!("Biggest days: {}.", list.join(", ")))
}

/// One bar per row, scaled to the largest; `of` adds each row's share of it.
fn bars(rows: &[(String, f64)], of: Option<f64>) -> Vec<Bar> {
    let largest = rows
        .iter()
        .map(|r| r.1)
        .filter(|l| l.is_finite())
        .fold(0.0, f64::max);
    let fraction = |l: f64| {
        if largest > 0.0 && l > 0.0 {
            (l / largest).min(1.0)
        } else {
            0.0
        }
    };
    let share = |l: f64| {
        let p = (l / of? * 100.0).round();
        p.is_finite().then(|| format!("{} %", p as i64))
    };
    rows.iter()
        .map(|(label, l)| Bar {
            label: label.clone(),
            amount: liters(*l),
            share: share(*l),
            fraction: fraction(*l),
        })
        .collect()
}

/// Of `width` steps, at least one for any use at all, so a small day still shows.
fn bar_steps(fraction: f64, width: usize) -> usize {
    if fraction > 0.0 {
        ((fraction * width as f64).round() as usize).clamp(1, width)
    } else {
        0
    }
}

fn text(o: &Outline) -> String {
    let mut out = format!("{}\n", o.headline);
    if o.cost_note {
        out.push_str(&format!("{COST_NOTE}\n"));
    }
    for m in &o.meters {
        out.push_str(&format!("\n{}: {}\n", m.name, m.amount));
        if !m.comparisons.is_empty() {
            out.push_str("  Compared with\n");
            let rows: Vec<Vec<String>> = m.comparisons.iter().map(|c| c.to_vec()).collect();
            out.push_str(&columns(&rows, &[false, true, false], "    "));
        }
        for note in &m.notes {
            out.push_str(&format!("  {note}\n"));
        }
        text_bars(&mut out, "Day by day", &m.days);
        text_bars(&mut out, "Kinds of use", &m.kinds);
        if let Some(link) = &m.link {
            out.push_str(&format!("  On the dashboard: {link}\n"));
        }
    }
    if o.alerts.is_empty() {
        out.push_str("\nNo alerts fired.\n");
    } else {
        out.push_str("\nAlerts\n");
        let rows: Vec<Vec<String>> = o
            .alerts
            .iter()
            .map(|(a, t)| vec![a.clone(), t.clone()])
            .collect();
        out.push_str(&columns(&rows, &[], "  "));
    }
    if let Some(url) = &o.dashboard {
        out.push_str(&format!("\nDashboard: {url}\n"));
    }
    out
}

fn text_bars(out: &mut String, caption: &str, bars: &[Bar]) {
    if bars.is_empty() {
        return;
    }
    out.push_str(&format!("  {caption}\n"));
    let rows: Vec<Vec<String>> = bars
        .iter()
        .map(|b| {
            let bar = "█".repeat(bar_steps(b.fraction, TEXT_BAR));
            let share = b.share.clone().unwrap_or_default();
            vec![b.label.clone(), bar, b.amount.clone(), share]
        })
        .collect();
    out.push_str(&columns(&rows, &[false, false, true, true], "    "));
}

/// Rows of cells as aligned columns, two spaces apart; `right[i]` right-aligns column i.
fn columns(rows: &[Vec<String>], right: &[bool], indent: &str) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| match right.get(i) {
                Some(true) => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        out.push_str(format!("{indent}{}", cells.join("  ")).trim_end());
        out.push('\n');
    }
    out
}

const TABLE: &str =
    r#"<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0""#;
const CAPTION: &str = r#"<p style="margin:16px 0 4px;font-weight:bold">"#;
const CELL: &str = r#"<td valign="top" style="padding:2px 8px 2px 0;white-space:nowrap">"#;
const AMOUNT: &str = r#"<td align="right" style="padding:2px 0 2px 8px;white-space:nowrap">"#;

fn html(o: &Outline) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\n\
         <body style=\"margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222222\">\n\
         {TABLE} style=\"max-width:640px\"><tr><td>\n<p style=\"font-size:16px;font-weight:bold\">{}</p>\n",
        html_escape(&o.title),
        html_escape(&o.headline)
    );
    if o.cost_note {
        out.push_str(&format!("<p style=\"color:#555555\">{COST_NOTE}</p>\n"));
    }
    for m in &o.meters {
        html_meter(&mut out, m);
    }
    if o.alerts.is_empty() {
        out.push_str(&format!("{CAPTION}No alerts fired.</p>\n"));
    } else {
        out.push_str(&format!("{CAPTION}Alerts</p>\n{TABLE}>\n"));
        for (at, text) in &o.alerts {
            let (at, text) = (html_escape(at), html_escape(text));
            out.push_str(&format!(
                "<tr>{CELL}{at}</td><td valign=\"top\">{text}</td></tr>\n"
            ));
        }
        out.push_str("</table>\n");
    }
    if let Some(url) = &o.dashboard {
        let url = html_escape(url);
        out.push_str(&format!(
            "<p style=\"margin-top:24px\"><a href=\"{url}\">Open the dashboard</a> ({url})</p>\n"
        ));
    }
    out.push_str("</td></tr></table>\n</body></html>\n");
    out
}

fn html_meter(out: &mut String, m: &MeterPart) {
    let name = match &m.link {
        Some(link) => format!(
            "<a href=\"{}\">{}</a>",
            html_escape(link),
            html_escape(&m.name)
        ),
        None => html_escape(&m.name),
    };
    out.push_str(&format!(
        "<h2 style=\"font-size:16px;margin:24px 0 8px\">{name}: {}</h2>\n",
        html_escape(&m.amount)
    ));
    if !m.comparisons.is_empty() {
        out.push_str(&format!("{CAPTION}Compared with</p>\n{TABLE}>\n"));
        for [label, amount, change] in &m.comparisons {
            let (label, amount, change) =
                (html_escape(label), html_escape(amount), html_escape(change));
            out.push_str(&format!(
                "<tr>{CELL}{label}</td>{AMOUNT}{amount}</td>{AMOUNT}{change}</td><td width=\"100%\"></td></tr>\n"
            ));
        }
        out.push_str("</table>\n");
    }
    for note in &m.notes {
        out.push_str(&format!("<p>{}</p>\n", html_escape(note)));
    }
    html_bars(out, "Day by day", &m.days);
    html_bars(out, "Kinds of use", &m.kinds);
}

/// Bars as email templates draw them: a nested full-width table whose first cell
/// is colored (`bgcolor` for Outlook, `background` for the rest) and as wide as the
/// row's part of the largest.
fn html_bars(out: &mut String, caption: &str, bars: &[Bar]) {
    if bars.is_empty() {
        return;
    }
    out.push_str(&format!("{CAPTION}{caption}</p>\n{TABLE}>\n"));
    let tiny = "font-size:1px;line-height:1px";
    for b in bars {
        let pct = bar_steps(b.fraction, 100);
        let mut cells = String::new();
        if pct > 0 {
            cells.push_str(&format!(
                "<td width=\"{pct}%\" bgcolor=\"{BAR_COLOR}\" style=\"background:{BAR_COLOR};width:{pct}%;height:12px;{tiny}\">&nbsp;</td>"
            ));
        }
        if pct < 100 {
            cells.push_str(&format!("<td style=\"{tiny}\">&nbsp;</td>"));
        }
        let share = b
            .share
            .as_deref()
            .map(|s| format!("{AMOUNT}{}</td>", html_escape(s)));
        out.push_str(&format!(
            "<tr>{CELL}{}</td><td width=\"100%\">{TABLE}><tr>{cells}</tr></table></td>{AMOUNT}{}</td>{}</tr>\n",
            html_escape(&b.label),
            html_escape(&b.amount),
            share.unwrap_or_default()
        ));
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::AlertLine;

    fn meter(name: &str, liters: f64, cost: Option<f64>) -> MeterReport {
        MeterReport {
            id: "house".into(),
            name: name.into(),
            liters,
            cost,
            days: vec![],
            comparisons: vec![],
            kinds: vec![],
            per_person: None,
        }
    }

    fn report(meters: Vec<MeterReport>, currency: Option<&str>) -> Report {
        Report {
            kind: ReportKind::Weekly,
            title: "Week 48: 23–29 November 2026".into(),
            currency: currency.map(str::to_owned),
            meters,
            alerts: vec![],
            dashboard_url: None,
        }
    }

    fn days(liters: &[f64]) -> Vec<(String, f64)> {
        let names = [
            "Mon 23", "Tue 24", "Wed 25", "Thu 26", "Fri 27", "Sat 28", "Sun 29",
        ];
        names
            .iter()
            .zip(liters)
            .map(|(d, l)| (d.to_string(), *l))
            .collect()
    }

    fn before(label: &str, liters: Option<f64>) -> Comparison {
        Comparison {
            label: label.into(),
            liters,
        }
    }

    /// A week with everything a report can say.
    fn full() -> Report {
        let mut m = meter("House", 1234.0, Some(4.56));
        m.days = days(&[150.0, 312.0, 100.0, 122.0, 0.0, 280.0, 270.0]);
        m.comparisons = vec![
            before("the week before", Some(1400.0)),
            before("week 48 of 2025", None),
        ];
        m.kinds = vec![("toilet".into(), 300.0), ("shower".into(), 420.0)];
        m.per_person = Some(PerPerson {
            persons: 3,
            liters: 58.8,
            reference_liters: 125.0,
            reference: "BDEW, Germany 2023".into(),
        });
        let mut r = report(vec![m], Some("EUR"));
        r.alerts = vec![AlertLine {
            at: "Tue 24 Nov 14:05".into(),
            text: "leak: House ran 2 h".into(),
        }];
        r.dashboard_url = Some("http://pi:8080/".into());
        r
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        let found = text.lines().find(|l| l.trim_start().starts_with(start));
        found.unwrap_or_else(|| panic!("no line {start:?} in\n{text}"))
    }

    #[test]
    fn subject_names_kind_title_and_total_liters() {
        let r = report(
            vec![meter("House", 1000.0, None), meter("Garden", 234.0, None)],
            None,
        );
        let (subject, _, _) = compose(&r);
        assert_eq!(
            subject,
            "[watermeter] Weekly report: Week 48: 23–29 November 2026: 1,234 L"
        );
    }

    #[test]
    fn subject_adds_the_cost_when_every_meter_has_one() {
        let meters = vec![
            meter("House", 1000.0, Some(4.0)),
            meter("Garden", 234.0, Some(0.56)),
        ];
        let mut r = report(meters, Some("EUR"));
        r.kind = ReportKind::Monthly;
        r.title = "November 2026".into();
        let (subject, text, _) = compose(&r);
        assert_eq!(
            subject,
            "[watermeter] Monthly report: November 2026: 1,234 L, 4.56 EUR"
        );
        assert!(
            text.starts_with("Last month the house used 1,234 L (4.56 EUR).\n"),
            "{text}"
        );
    }

    #[test]
    fn a_cost_known_for_some_meters_is_no_total() {
        let meters = vec![
            meter("House", 1000.0, Some(4.0)),
            meter("Garden", 234.0, None),
        ];
        let (subject, text, _) = compose(&report(meters, Some("EUR")));
        assert!(subject.ends_with(": 1,234 L"), "{subject}");
        assert!(text.contains("House: 1,000 L, 4.00 EUR\n"), "{text}");
        assert!(text.contains("Garden: 234 L\n"), "{text}");
        assert_eq!(
            text.matches("without the fixed charge").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn without_a_currency_no_cost_is_shown() {
        let (subject, text, html) = compose(&report(vec![meter("House", 10.0, Some(1.0))], None));
        assert!(!subject.contains("1.00"), "{subject}");
        assert!(
            !text.contains("1.00") && !text.contains("fixed charge"),
            "{text}"
        );
        assert!(!html.contains("1.00"), "{html}");
    }

    #[test]
    fn a_line_break_in_the_title_stays_out_of_the_subject_header() {
        let mut r = report(vec![], None);
        r.title = "Week 48\r\nBcc: someone".into();
        let (subject, _, _) = compose(&r);
        assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    }

    fn check_change(now: f64, before: Option<f64>, expected: &str) {
        assert_eq!(change(now, before), expected, "{now} after {before:?}");
    }

    #[test]
    fn changes_carry_a_percent_and_a_word() {
        check_change(1120.0, Some(1000.0), "12 % more");
        check_change(920.0, Some(1000.0), "8 % less");
        check_change(1002.0, Some(1000.0), "about the same");
        check_change(50_000.0, Some(10.0), "499,900 % more");
        check_change(0.0, Some(1000.0), "100 % less");
    }

    #[test]
    fn changes_say_no_data_and_never_divide_by_zero() {
        check_change(500.0, None, "no data");
        check_change(500.0, Some(0.0), "no use then");
        check_change(0.0, Some(0.0), "the same");
        check_change(f64::NAN, Some(10.0), "no data");
        check_change(10.0, Some(f64::NAN), "no data");
        check_change(-1e300, Some(1e-300), "9,223,372,036,854,775,807 % less");
    }

    #[test]
    fn headline_compares_the_house_with_the_period_before() {
        let (_, text, html) = compose(&full());
        let top = "Last week the house used 1,234 L (4.56 EUR), 12 % less than the week before.";
        assert!(text.starts_with(top), "{text}");
        assert!(html.contains(top), "{html}");
    }

    #[test]
    fn headline_says_when_the_period_before_used_nothing() {
        let mut m = meter("House", 50.0, None);
        m.comparisons = vec![before("the week before", Some(0.0))];
        let (_, text, _) = compose(&report(vec![m], None));
        assert!(
            text.starts_with("Last week the house used 50 L, after 0 L the week before.\n"),
            "{text}"
        );
        assert!(
            line(&text, "the week before").ends_with("0 L  no use then"),
            "{text}"
        );
    }

    #[test]
    fn headline_leaves_out_a_comparison_some_meter_lacks() {
        let mut a = meter("House", 50.0, None);
        a.comparisons = vec![before("the week before", Some(40.0))];
        let mut b = meter("Garden", 50.0, None);
        b.comparisons = vec![before("the week before", None)];
        let (_, text, _) = compose(&report(vec![a, b], None));
        assert!(
            text.starts_with("Last week the house used 100 L.\n"),
            "{text}"
        );
        assert!(text.contains("no data"), "{text}");
    }

    #[test]
    fn html_escapes_every_text_from_the_report() {
        let evil = r#"<b>&"'"#;
        let mut r = full();
        r.title = evil.into();
        r.meters[0].name = evil.into();
        r.meters[0].id = evil.into();
        r.meters[0].days[0].0 = evil.into();
        r.meters[0].kinds[0].0 = evil.into();
        r.meters[0].comparisons[0].label = evil.into();
        r.alerts[0].text = evil.into();
        r.alerts[0].at = evil.into();
        r.dashboard_url = Some(format!("http://x/{evil}"));
        if let Some(p) = r.meters[0].per_person.as_mut() {
            p.reference = evil.into();
        }
        let (_, _, html) = compose(&r);
        assert!(!html.contains("<b>") && !html.contains("&\""), "{html}");
        assert!(html.contains("&lt;b&gt;&amp;&quot;&#39;"), "{html}");
        // title, meter, day, kind, comparison, reference, alert time and text, and
        // in each of the two links: the dashboard's and the meter's.
        assert!(html.matches("&lt;b&gt;").count() >= 12, "{html}");
    }

    #[test]
    fn day_bars_scale_to_the_largest_day() {
        let mut m = meter("House", 160.0, None);
        m.days = days(&[100.0, 50.0, 0.0, 0.1]);
        let (_, text, html) = compose(&report(vec![m], None));
        assert_eq!(
            html.matches("background:#0b63ce;width:100%").count(),
            1,
            "{html}"
        );
        assert_eq!(
            html.matches("background:#0b63ce;width:50%").count(),
            1,
            "{html}"
        );
        // A drop still shows; a dry day shows nothing.
        assert_eq!(
            html.matches("background:#0b63ce;width:1%").count(),
            1,
            "{html}"
        );
        assert_eq!(html.matches("bgcolor").count(), 3, "{html}");
        let bar = |day: &str| line(&text, day).matches('█').count();
        assert_eq!(
            (bar("Mon 23"), bar("Tue 24"), bar("Wed 25"), bar("Thu 26")),
            (30, 15, 0, 1)
        );
    }

    #[test]
    fn plain_text_bars_line_up() {
        let mut m = meter("House", 160.0, None);
        m.days = days(&[100.0, 5.5]);
        let (_, text, _) = compose(&report(vec![m], None));
        let mon = format!("    Mon 23  {}  100 L", "█".repeat(30));
        let tue = format!("    Tue 24  {}{}  5.5 L", "█".repeat(2), " ".repeat(28));
        assert_eq!(line(&text, "Mon 23"), mon);
        assert_eq!(line(&text, "Tue 24"), tue);
    }

    #[test]
    fn an_all_zero_period_draws_no_bars_and_no_nan() {
        let mut m = meter("House", 0.0, Some(0.0));
        m.days = days(&[0.0; 7]);
        m.kinds = vec![("shower".into(), 0.0)];
        m.comparisons = vec![before("the week before", Some(0.0))];
        let (subject, text, html) = compose(&report(vec![m], Some("EUR")));
        assert!(subject.ends_with(": 0 L, 0.00 EUR"), "{subject}");
        for part in [&text, &html] {
            assert!(!part.contains("NaN") && !part.contains("inf"), "{part}");
        }
        assert!(!text.contains('█') && !html.contains("bgcolor"), "{html}");
        assert!(!text.contains("Biggest days"), "{text}");
        assert!(
            line(&text, "the week before").ends_with("the same"),
            "{text}"
        );
    }

    #[test]
    fn empty_and_nan_reports_do_not_panic() {
        let (subject, text, html) = compose(&report(vec![], Some("EUR")));
        assert!(subject.ends_with(": 0 L"), "{subject}");
        assert!(text.contains("No alerts fired."), "{text}");
        assert!(html.ends_with("</html>\n"), "{html}");
        let mut m = meter("House", f64::NAN, Some(f64::NAN));
        m.days = days(&[f64::NAN, f64::INFINITY, -5.0, 3.0]);
        m.kinds = vec![("shower".into(), f64::NAN), ("toilet".into(), -1.0)];
        m.comparisons = vec![before("the week before", Some(f64::NAN))];
        m.per_person = Some(PerPerson {
            persons: 0,
            liters: f64::NAN,
            reference_liters: 0.0,
            reference: String::new(),
        });
        let (_, _, html) = compose(&report(vec![m], Some("EUR")));
        assert!(!html.contains("width:NaN"), "{html}");
    }

    #[test]
    fn meter_facts_are_in_both_parts() {
        let (_, text, html) = compose(&full());
        for fact in [
            "House",
            "1,234 L, 4.56 EUR",
            "Costs are for water and sewage, without the fixed charge.",
            "the week before",
            "1,400 L",
            "12 % less",
            "week 48 of 2025",
            "no data",
            "Per person and day: 58.8 L (3 persons); the reference is 125 L (BDEW, Germany 2023).",
            "Biggest days: Tue 24 (312 L), Sat 28 (280 L), Sun 29 (270 L).",
            "Day by day",
            "Fri 27",
            "Kinds of use",
            "420 L",
            "34 %",
            "24 %",
            "Tue 24 Nov 14:05",
            "leak: House ran 2 h",
            "http://pi:8080/meters/house",
            "http://pi:8080/",
        ] {
            assert!(text.contains(fact), "text lacks {fact:?}:\n{text}");
            assert!(html.contains(fact), "html lacks {fact:?}:\n{html}");
        }
        assert!(!text.contains("No alerts fired."), "{text}");
    }

    #[test]
    fn kinds_of_use_come_largest_first_with_their_share() {
        let (_, text, _) = compose(&full());
        let shower = text.find("shower").unwrap_or(usize::MAX);
        let toilet = text.find("toilet").unwrap_or(0);
        assert!(shower < toilet, "{text}");
        assert!(line(&text, "shower").ends_with("420 L  34 %"), "{text}");
        assert!(line(&text, "toilet").ends_with("300 L  24 %"), "{text}");
    }

    #[test]
    fn a_quiet_period_says_no_alerts_fired_and_links_nothing_without_a_dashboard() {
        let mut r = full();
        r.alerts.clear();
        r.dashboard_url = None;
        let (_, text, html) = compose(&r);
        assert!(text.contains("\nNo alerts fired.\n"), "{text}");
        assert!(html.contains("No alerts fired."), "{html}");
        assert!(!text.contains("http") && !html.contains("href"), "{html}");
    }

    #[test]
    fn html_uses_only_what_mail_clients_render() {
        let (_, _, html) = compose(&full());
        for banned in ["<svg", "<img", "<style", "<link", "<script", "url("] {
            assert!(!html.contains(banned), "{banned} in {html}");
        }
        assert!(html.contains("<table role=\"presentation\""), "{html}");
    }
}
