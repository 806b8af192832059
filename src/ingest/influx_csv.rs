//! The CSV that `influx -execute 'SELECT …' -format csv` prints, turned into line
//! protocol so that `import` reads it through the same matcher as everything else.
//!
//! The header is `name,time,<columns…>` or, with `GROUP BY`, `name,tags,time,…`
//! (the `tags` cell holds `k=v,k=v`). CSV cannot tell fields from tags: a column
//! whose name is a field some meter takes (`liters`, `value`, a counter field) is a
//! field, every other non-empty column is a tag. Times are integers in the CLI's
//! `-precision` (passed through as they are) or RFC 3339 (converted to `precision`).
//! Pure: no IO; one `Result` per row, and a bad row names its problem.

use chrono::DateTime;

use super::line_protocol::{write_line, FieldValue, Precision};

/// Whether `first_line` is the header of the influx CLI's CSV output.
pub fn is_header(first_line: &str) -> bool {
    let line = first_line.trim_end_matches(['\r', '\n']);
    line.starts_with("name,time") || line.starts_with("name,tags,time")
}

/// A parsed header, ready to convert rows.
#[derive(Debug, Clone)]
pub struct Converter {
    columns: Vec<String>,
    fields: Vec<String>,
    precision: Precision,
}

impl Converter {
    /// `fields`: the field names the configured meters take.
    pub fn new(header: &str, fields: Vec<String>, precision: Precision) -> Converter {
        let columns = split_row(header.trim_end_matches(['\r', '\n']))
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        Converter {
            columns,
            fields,
            precision,
        }
    }

    /// One CSV row as one line of line protocol (without the newline).
    pub fn convert(&self, row: &str) -> Result<String, String> {
        let cells = split_row(row.trim_end_matches(['\r', '\n']));
        if cells.len() != self.columns.len() {
            return Err(format!(
                "has {} cells but the header has {} columns",
                cells.len(),
                self.columns.len()
            ));
        }
        let (mut name, mut time) = (None, None);
        let mut tags: Vec<(String, String)> = Vec::new();
        let mut fields: Vec<(&str, f64)> = Vec::new();
        for (col, cell) in self.columns.iter().zip(&cells) {
            match col.as_str() {
                "name" => name = Some(cell.as_str()),
                "time" => time = Some(cell.as_str()),
                "tags" => tags.extend(cell.split(',').filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.to_string()))
                })),
                _ if cell.is_empty() => {}
                c if self.fields.iter().any(|f| f == c) => {
                    let v = cell
                        .trim_end_matches('i')
                        .parse::<f64>()
                        .map_err(|_| format!("column `{c}` holds `{cell}`, not a number"))?;
                    fields.push((c, v));
                }
                c => tags.push((c.to_string(), cell.to_string())),
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or("has no measurement name")?;
        let ts = self.timestamp(time.unwrap_or(""))?;
        if fields.is_empty() {
            return Err("has no value in a field any meter takes".into());
        }
        let tag_refs: Vec<(&str, &str)> =
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let field_values: Vec<(&str, FieldValue<'_>)> = fields
            .iter()
            .map(|(k, v)| (*k, FieldValue::Float(*v)))
            .collect();
        let mut out = String::new();
        write_line(&mut out, name, &tag_refs, &field_values, Some(ts));
        Ok(out.trim_end().to_string())
    }

    fn timestamp(&self, text: &str) -> Result<i64, String> {
        if let Ok(n) = text.parse::<i64>() {
            return Ok(n);
        }
        let t = DateTime::parse_from_rfc3339(text).map_err(|_| {
            format!("time `{text}` is neither a number nor RFC 3339 (use -precision rfc3339 or ns)")
        })?;
        let ns = t
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("time `{text}` is out of range"))?;
        Ok(match self.precision {
            Precision::Nanoseconds => ns,
            Precision::Microseconds => ns / 1_000,
            Precision::Milliseconds => ns / 1_000_000,
            Precision::Seconds => ns / 1_000_000_000,
            Precision::Minutes => ns / 60_000_000_000,
            Precision::Hours => ns / 3_600_000_000_000,
        })
    }
}

/// Splits a CSV row on commas, honouring double quotes (`""` is a quote).
fn split_row(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(s) = cells.last_mut() {
                    s.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            c => {
                if let Some(s) = cells.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, row: &str, expected: Result<&str, &str>) {
        let c = Converter::new(
            header,
            vec!["liters".into(), "total".into()],
            Precision::Nanoseconds,
        );
        match (c.convert(row), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(part)) => assert!(got.contains(part), "{got}"),
            (got, want) => panic!("{row}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn headers_of_the_influx_cli_are_recognised() {
        assert!(is_header("name,time,liters\n"));
        assert!(is_header("name,tags,time,liters\r\n"));
        assert!(!is_header("water,meter=main liters=1"));
        assert!(!is_header("meter,time,liters"));
    }

    #[test]
    fn rows_become_line_protocol_with_tags_and_fields() {
        check(
            "name,time,liters,meter",
            "water,1700000000000000000,1,main",
            Ok("water,meter=main liters=1.0 1700000000000000000"),
        );
        check(
            "name,time,liters",
            "water,1700000000000000000,2.5",
            Ok("water liters=2.5 1700000000000000000"),
        );
        check(
            "name,tags,time,liters",
            "water,\"meter=main,site=a\",5,1",
            Ok("water,meter=main,site=a liters=1.0 5"),
        );
        check(
            "name,time,liters,meter",
            "water,2023-11-14T22:13:20Z,1,main",
            Ok("water,meter=main liters=1.0 1700000000000000000"),
        );
        check(
            "name,time,total,meter",
            "water,7,123,main",
            Ok("water,meter=main total=123.0 7"),
        );
    }

    #[test]
    fn bad_rows_say_why() {
        check("name,time,liters", "water,1,abc", Err("not a number"));
        check(
            "name,time,liters",
            "water,yesterday,1",
            Err("neither a number nor RFC 3339"),
        );
        check(
            "name,time,liters",
            "water,1",
            Err("2 cells but the header has 3"),
        );
        check(
            "name,time,liters,meter",
            "water,1,,main",
            Err("no value in a field"),
        );
        check("name,time,liters", ",1,1", Err("no measurement name"));
    }
}
