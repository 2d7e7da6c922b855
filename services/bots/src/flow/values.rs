//! Checking one property value against its kind (see [`crate::states::Kind`]).

use std::collections::BTreeSet;

use serde_json::Value;

use super::MAX_DURATION_SECONDS;

/// Most cases one `split` may have.
pub const MAX_CASES: usize = 100;
use crate::condition::Condition;
use crate::states::Kind;
use crate::template::Template;

/// Checks one property value against its kind; the message says what it must be.
pub(super) fn check_value(kind: Kind, value: &Value, names: &BTreeSet<&str>) -> Result<(), String> {
    match kind {
        Kind::Text => check_template(text(value)?, names),
        Kind::Texts => {
            let items = value.as_array().ok_or("must be a list of texts")?;
            if items.is_empty() {
                return Err("must list at least one text".to_owned());
            }
            for (index, item) in items.iter().enumerate() {
                check_template(text(item)?, names).map_err(|message| format!("item {index}: {message}"))?;
            }
            Ok(())
        }
        Kind::Plain => text(value).map(|_| ()),
        Kind::Name => {
            let value = text(value)?;
            if value.is_empty()
                || value.len() > 128
                || !value
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
            {
                return Err(format!(
                    "{value:?} is not a name (1 to 128 of letters, digits, `_`, `-` or `.`)"
                ));
            }
            Ok(())
        }
        Kind::Key => {
            let value = text(value)?;
            if is_name(value) {
                Ok(())
            } else {
                Err(format!(
                    "{value:?} is not a field key (1 to 64 of letters, digits, `_` or `-`)"
                ))
            }
        }
        Kind::Target => {
            let value = text(value)?;
            let key = value
                .strip_prefix("contact.fields.")
                .or_else(|| value.strip_prefix("flow."));
            match key {
                Some(key) if is_name(key) => Ok(()),
                _ => Err(format!(
                    "{value:?} is not a place to save to: use contact.fields.<key> or flow.<variable>"
                )),
            }
        }
        Kind::State => {
            let value = text(value)?;
            if names.contains(value) {
                Ok(())
            } else {
                Err(format!("{value:?} is not a state"))
            }
        }
        Kind::Integer { min, max } => match value.as_i64() {
            Some(number) if (min..=max).contains(&number) => Ok(()),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        Kind::Boolean => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "must be true or false".to_owned()),
        Kind::Duration => {
            let value = text(value)?;
            match duration_seconds(value) {
                Some(seconds) if (1..=MAX_DURATION_SECONDS).contains(&seconds) => Ok(()),
                _ => Err(format!(
                    "{value:?} is not a duration up to 30 days (a number and s, m, h or d: 90s, 5m, 2d)"
                )),
            }
        }
        Kind::TimeOfDay => {
            let value = text(value)?;
            let valid = value.split_once(':').is_some_and(|(hours, minutes)| {
                hours.len() == 2
                    && minutes.len() == 2
                    && (hours.bytes().chain(minutes.bytes())).all(|byte| byte.is_ascii_digit())
                    && hours.parse::<u8>().is_ok_and(|hours| hours < 24)
                    && minutes.parse::<u8>().is_ok_and(|minutes| minutes < 60)
            });
            if valid {
                Ok(())
            } else {
                Err(format!("{value:?} is not a time of day (HH:MM, 24 h)"))
            }
        }
        Kind::Choice(choices) => {
            let value = text(value)?;
            if choices.contains(&value) {
                Ok(())
            } else {
                Err(format!("{value:?} is not one of {}", choices.join(", ")))
            }
        }
        Kind::TextMap => {
            let object = value.as_object().ok_or("must be an object of texts")?;
            for (key, item) in object {
                check_template(text(item)?, names).map_err(|message| format!("{key}: {message}"))?;
            }
            Ok(())
        }
        Kind::Pointers => {
            let object = value.as_object().ok_or("must be an object of JSON pointers")?;
            for (key, item) in object {
                let pointer = text(item)?;
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(format!(
                        "{key}: {pointer:?} is not a JSON pointer (e.g. /data/id)"
                    ));
                }
            }
            Ok(())
        }
        Kind::Object => value
            .as_object()
            .map(|_| ())
            .ok_or_else(|| "must be an object".to_owned()),
        Kind::Cases => {
            let cases = value.as_array().ok_or("must be a list of {when, next}")?;
            if cases.is_empty() || cases.len() > MAX_CASES {
                return Err(format!("must list 1 to {MAX_CASES} cases"));
            }
            for (index, case) in cases.iter().enumerate() {
                let object = case
                    .as_object()
                    .ok_or_else(|| format!("case {index} must be an object {{when, next}}"))?;
                let when = object
                    .get("when")
                    .ok_or_else(|| format!("case {index} needs a condition `when`"))?;
                Condition::parse(when).map_err(|error| format!("case {index}: when: {error}"))?;
                match object.get("next").and_then(Value::as_str) {
                    Some(next) if names.contains(next) => {}
                    Some(next) => {
                        return Err(format!("case {index} leads to {next:?}, which is not a state"));
                    }
                    None => return Err(format!("case {index} needs `next`, the state it leads to")),
                }
                if let Some(extra) = object.keys().find(|key| !matches!(key.as_str(), "when" | "next")) {
                    return Err(format!("case {index} takes only when and next, not {extra:?}"));
                }
            }
            Ok(())
        }
    }
}

fn text(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| "must be a text".to_owned())
}

/// Parses `source` as a template whose `states.<name>` paths name states of the flow.
fn check_template(source: &str, names: &BTreeSet<&str>) -> Result<(), String> {
    let template = Template::parse(source).map_err(|error| format!("bad template: {error}"))?;
    for expression in template.expressions() {
        // A flow variable is one name, a state's output is a state and an output name.
        let segments = match expression.path[0].as_str() {
            "flow" => Some(2),
            "states" => Some(3),
            _ => None,
        };
        if let Some(segments) = segments
            && expression.path.len() != segments
        {
            let shape = if segments == 2 {
                "flow.<variable>"
            } else {
                "states.<state>.<output>"
            };
            return Err(format!(
                "bad template: {} is not of the form {shape}",
                expression.dotted()
            ));
        }
        if expression.path[0] == "states" && !names.contains(expression.path[1].as_str()) {
            return Err(format!(
                "bad template: {} refers to state {:?}, which the flow does not have",
                expression.dotted(),
                expression.path[1]
            ));
        }
    }
    Ok(())
}

/// A state, variable or field name: 1 to 64 of letters, digits, `_` or `-`.
pub(super) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// `90s`, `5m`, `2h`, `1d` in seconds.
pub fn duration_seconds(text: &str) -> Option<u64> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    number.checked_mul(scale)
}
