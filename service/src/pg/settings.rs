//! The client's own session settings: what `SET`, `RESET` and `SHOW` see over the PostgreSQL
//! protocol. Only the harmless client settings of [`crate::analyst::policy::CLIENT_SETTINGS`]
//! can be set; they live in the connection's metadata (under their lower-case name, where the
//! result encoder reads `datestyle`, `extra_float_digits`, …) and never reach the engine.
//! `statement_timeout` can lower the configured time limit, never raise it.

use std::collections::HashMap;
use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Expr, Value};

/// A setting a client asked for that kitle cannot honour.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidValue(pub String);

/// The name PostgreSQL reports a parameter by (`DateStyle`), for a lower-case name.
pub fn display_name(name: &str) -> &str {
    match name {
        "datestyle" => "DateStyle",
        "timezone" => "TimeZone",
        "intervalstyle" => "IntervalStyle",
        other => other,
    }
}

/// Whether a change of `name` is reported to the client (`ParameterStatus`), as PostgreSQL
/// reports it.
pub fn is_reported(name: &str) -> bool {
    matches!(
        name,
        "application_name"
            | "client_encoding"
            | "datestyle"
            | "intervalstyle"
            | "timezone"
            | "standard_conforming_strings"
            | "search_path"
            | "default_transaction_read_only"
    )
}

/// The value of a parameter nobody set: the server's own parameters and the defaults of the
/// client settings. `None` for a parameter kitle does not know.
pub fn default_value(name: &str, configured_timeout: Option<Duration>) -> Option<String> {
    let value = match name {
        "server_version" => super::SERVER_VERSION.to_string(),
        "server_version_num" => super::SERVER_VERSION_NUM.to_string(),
        "server_encoding" | "client_encoding" => "UTF8".into(),
        "integer_datetimes" | "standard_conforming_strings" => "on".into(),
        "is_superuser" | "in_hot_standby" | "jit" => "off".into(),
        "max_identifier_length" => "63".into(),
        "datestyle" => "ISO, YMD".into(),
        "timezone" => "UTC".into(),
        "intervalstyle" => "postgres".into(),
        "bytea_output" => "hex".into(),
        "extra_float_digits" => "1".into(),
        "search_path" => "public".into(),
        "application_name" => String::new(),
        "client_min_messages" => "notice".into(),
        "default_transaction_isolation" | "transaction_isolation" => "read committed".into(),
        // Every session is read-only, whatever a client asks for.
        "default_transaction_read_only" | "transaction_read_only" => "on".into(),
        "statement_timeout" => match configured_timeout {
            Some(limit) => format!("{}ms", limit.as_millis()),
            None => "0".into(),
        },
        "lock_timeout" | "idle_in_transaction_session_timeout" => "0".into(),
        "lc_messages" | "lc_monetary" | "lc_numeric" | "lc_time" => "C".into(),
        _ => return None,
    };
    Some(value)
}

/// The text of a `SET` value list (`SET search_path = a, b` is `a, b`).
pub fn value_text(values: &[Expr]) -> String {
    values
        .iter()
        .map(|v| match v {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s)
                | Value::DoubleQuotedString(s)
                | Value::EscapedStringLiteral(s)
                | Value::NationalStringLiteral(s) => s.clone(),
                Value::Number(n, _) => n.to_string(),
                Value::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
                other => other.to_string(),
            },
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a PostgreSQL duration setting (`5000`, `5s`, `250ms`, `2min`, `1h`); `0` means none.
pub fn parse_timeout(text: &str) -> Option<Option<Duration>> {
    let text = text.trim().trim_matches('\'').to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "" | "ms" => number,
        "s" => number * 1e3,
        "min" => number * 6e4,
        "h" => number * 3.6e6,
        "d" => number * 8.64e7,
        _ => return None,
    };
    if !millis.is_finite() || millis < 0.0 {
        return None;
    }
    Some((millis >= 1.0).then(|| Duration::from_millis(millis as u64)))
}

/// Checks and normalises a value for client setting `name` (lower case).
pub fn normalise(name: &str, value: &str) -> Result<String, InvalidValue> {
    match name {
        "client_encoding" => {
            let canonical = value.to_ascii_uppercase().replace(['-', '_'], "");
            if canonical == "UTF8" || canonical == "UNICODE" {
                Ok("UTF8".into())
            } else {
                Err(InvalidValue(format!(
                    "kitle speaks UTF8 only (Turkish text stays intact): client_encoding {value:?} \
                     is not supported"
                )))
            }
        }
        "extra_float_digits" => match value.trim().parse::<i8>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(InvalidValue(format!(
                "extra_float_digits must be an integer from -15 to 3, not {value:?}"
            ))),
        },
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            match parse_timeout(value) {
                Some(Some(d)) => Ok(format!("{}ms", d.as_millis())),
                Some(None) => Ok("0".into()),
                None => Err(InvalidValue(format!(
                    "{name} must be a duration such as 5000, 5s or 2min, not {value:?}"
                ))),
            }
        }
        "timezone" => {
            let trimmed = value.trim();
            let known = trimmed.eq_ignore_ascii_case("utc")
                || trimmed.eq_ignore_ascii_case("gmt")
                || trimmed.eq_ignore_ascii_case("z")
                || trimmed.parse::<chrono_tz::Tz>().is_ok()
                || trimmed
                    .trim_start_matches(['+', '-'])
                    .split(':')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if known {
                Ok(trimmed.to_string())
            } else {
                Err(InvalidValue(format!(
                    "invalid value for parameter \"TimeZone\": {value:?}"
                )))
            }
        }
        _ => Ok(value.to_string()),
    }
}

/// The current value of `name` (lower case) for a connection with `metadata`.
pub fn current(
    metadata: &HashMap<String, String>,
    name: &str,
    configured_timeout: Option<Duration>,
) -> Option<String> {
    if matches!(
        name,
        "default_transaction_read_only" | "transaction_read_only"
    ) {
        return Some("on".into());
    }
    if name == "session_authorization" {
        return metadata.get("user").cloned();
    }
    metadata
        .get(name)
        .cloned()
        .or_else(|| default_value(name, configured_timeout))
}

/// The time limit of a connection's statements: the configured one, lowered by the client's
/// `statement_timeout` when that is shorter.
pub fn time_limit(
    metadata: &HashMap<String, String>,
    configured: Option<Duration>,
) -> Option<Duration> {
    let own = metadata
        .get("statement_timeout")
        .and_then(|v| parse_timeout(v))
        .flatten();
    match (configured, own) {
        (Some(c), Some(o)) => Some(c.min(o)),
        (c, o) => c.or(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_units_and_only_lower_the_limit() {
        assert_eq!(parse_timeout("5000"), Some(Some(Duration::from_secs(5))));
        assert_eq!(parse_timeout("'2s'"), Some(Some(Duration::from_secs(2))));
        assert_eq!(parse_timeout("1min"), Some(Some(Duration::from_secs(60))));
        assert_eq!(parse_timeout("0"), Some(None));
        assert_eq!(parse_timeout("soon"), None);
        let mut metadata = HashMap::new();
        let configured = Some(Duration::from_secs(30));
        assert_eq!(time_limit(&metadata, configured), configured);
        metadata.insert("statement_timeout".into(), "1500ms".into());
        assert_eq!(
            time_limit(&metadata, configured),
            Some(Duration::from_millis(1500))
        );
        metadata.insert("statement_timeout".into(), "1h".into());
        assert_eq!(time_limit(&metadata, configured), configured);
    }

    #[test]
    fn only_utf8_is_spoken() {
        assert_eq!(normalise("client_encoding", "utf-8"), Ok("UTF8".into()));
        assert!(normalise("client_encoding", "LATIN5").is_err());
        assert!(normalise("extra_float_digits", "9").is_err());
        assert_eq!(
            normalise("timezone", "Europe/Istanbul"),
            Ok("Europe/Istanbul".into())
        );
        assert!(normalise("timezone", "Mars/Olympus").is_err());
    }
}
