//! Snippet templates: text with `{{contact.first_name}}`-style variables. Unknown variables
//! are refused when a snippet is saved; a variable without a value is an explicit error when
//! it is rendered, never a silent gap in a message to a customer.

use std::collections::HashMap;

use crate::RoutingError;

/// Contact fields a snippet may use as `{{contact.<field>}}`.
pub const CONTACT_FIELDS: [&str; 5] = ["first_name", "last_name", "name", "email", "phone"];
/// Longest snippet body, in characters.
const MAX_BODY_CHARS: usize = 4_096;
/// Longest shortcut, in characters.
const MAX_SHORTCUT_CHARS: usize = 64;

/// A checked shortcut.
pub fn shortcut(value: &str) -> Result<String, RoutingError> {
    let value = value.trim();
    let valid = !value.is_empty()
        && value.chars().count() <= MAX_SHORTCUT_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(RoutingError::Invalid(format!(
            "shortcut: 1 to {MAX_SHORTCUT_CHARS} of a-z, 0-9, '-' and '_'"
        )))
    }
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable(String),
}

/// A parsed snippet body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

fn known(variable: &str) -> bool {
    variable == "agent.name"
        || variable
            .strip_prefix("contact.")
            .is_some_and(|field| CONTACT_FIELDS.contains(&field))
}

impl Template {
    /// Parses `body`, refusing unknown variables and unclosed `{{`.
    pub fn parse(body: &str) -> Result<Self, RoutingError> {
        if body.trim().is_empty() || body.chars().count() > MAX_BODY_CHARS {
            return Err(RoutingError::Invalid(format!(
                "body: 1 to {MAX_BODY_CHARS} characters"
            )));
        }
        let mut pieces = Vec::new();
        let mut rest = body;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| RoutingError::Invalid("body: a '{{' is not closed by '}}'".to_owned()))?;
            let variable = after[..end].trim();
            if !known(variable) {
                return Err(RoutingError::Invalid(format!(
                    "body: unknown variable {{{{{variable}}}}}; use contact.{} or agent.name",
                    CONTACT_FIELDS.join(", contact.")
                )));
            }
            pieces.push(Piece::Variable(variable.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// Fills the variables from `values`; `Err` lists the variables without a value.
    pub fn render(&self, values: &HashMap<String, String>) -> Result<String, Vec<String>> {
        let mut text = String::new();
        let mut missing = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(part) => text.push_str(part),
                Piece::Variable(variable) => match values.get(variable) {
                    Some(value) => text.push_str(value),
                    None => missing.push(variable.clone()),
                },
            }
        }
        if missing.is_empty() {
            Ok(text)
        } else {
            Err(missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_and_missing_ones_are_named() {
        let template = Template::parse("Hi {{ contact.first_name }}, I'm {{agent.name}}.").unwrap();
        let values = HashMap::from([
            ("contact.first_name".to_owned(), "Ada".to_owned()),
            ("agent.name".to_owned(), "Sam".to_owned()),
        ]);
        assert_eq!(template.render(&values).unwrap(), "Hi Ada, I'm Sam.");
        let partial = HashMap::from([("agent.name".to_owned(), "Sam".to_owned())]);
        assert_eq!(template.render(&partial).unwrap_err(), vec!["contact.first_name"]);
    }

    #[test]
    fn unknown_variables_and_unclosed_braces_are_refused() {
        assert!(Template::parse("Hi {{contact.shoe_size}}").is_err());
        assert!(Template::parse("Hi {{contact.first_name").is_err());
        assert!(Template::parse("   ").is_err());
        assert!(Template::parse("No variables at all").is_ok());
    }

    #[test]
    fn shortcuts_are_plain_words() {
        assert_eq!(shortcut(" greeting-1 ").unwrap(), "greeting-1");
        assert!(shortcut("Greeting").is_err());
        assert!(shortcut("").is_err());
    }
}
