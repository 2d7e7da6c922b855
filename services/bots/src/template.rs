//! The template language of flow texts: `{{ path }}` and `{{ path | filter | … }}`, nothing
//! else — no code, no loops, no assignment, so a flow author cannot make the runtime do anything
//! but read a value. A path names a value of the turn: `contact.first_name`,
//! `contact.fields.<key>`, `flow.<variable>`, `trigger.message.text`, `states.<state>.<output>`.
//! A value that is missing (or empty) is an error when rendering unless the expression says what
//! to use instead (`{{ contact.first_name | default: "there" }}`), so a flow never sends
//! "Hello ," by accident.

use std::fmt;

/// The first segment every path starts with.
pub const ROOTS: [&str; 4] = ["contact", "flow", "trigger", "states"];

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Expression),
}

/// One `{{ … }}`: a path and the filters applied to its value, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    /// The path's segments, e.g. `["contact", "fields", "plan"]`.
    pub path: Vec<String>,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    /// Used when the value is missing or empty.
    Default(String),
    Upcase,
    Downcase,
    Capitalize,
    Trim,
    /// At most this many characters.
    Truncate(usize),
}

/// Why a template does not parse; `at` is the byte offset of the `{{` at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without its `}}`.
    #[error("at byte {at}: `{{{{` is never closed with `}}}}`")]
    Unclosed {
        /// Offset of the `{{`.
        at: usize,
    },
    /// A path that is not names joined by dots.
    #[error("at byte {at}: {found:?} is not a path (names of letters, digits, `_` or `-` joined by dots)")]
    BadPath {
        /// Offset of the `{{`.
        at: usize,
        /// What stood where the path should be.
        found: String,
    },
    /// A path that starts with none of [`ROOTS`].
    #[error("at byte {at}: {path:?} starts with none of contact, flow, trigger, states")]
    UnknownRoot {
        /// Offset of the `{{`.
        at: usize,
        /// The path as written.
        path: String,
    },
    /// A filter this language does not have.
    #[error(
        "at byte {at}: no filter {name:?} (there are default, upcase, downcase, capitalize, trim, truncate)"
    )]
    UnknownFilter {
        /// Offset of the `{{`.
        at: usize,
        /// The filter as written.
        name: String,
    },
    /// A filter with a missing or wrong argument.
    #[error("at byte {at}: filter {name} {problem}")]
    BadArgument {
        /// Offset of the `{{`.
        at: usize,
        /// The filter.
        name: &'static str,
        /// What is wrong with its argument.
        problem: &'static str,
    },
}

/// A value the template needs and the turn does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} has no value; give the expression one with `| default: \"…\"`")]
pub struct MissingValue {
    /// The path, dotted.
    pub path: String,
}

/// Where rendering reads values: the contact, the flow's variables, the trigger and the
/// outputs of earlier states.
pub trait Values {
    /// The value at `path` (all segments, the root first) as text; `None` when there is none.
    fn value(&self, path: &[String]) -> Option<String>;
}

/// A JSON document as values: objects are walked by the path's segments; strings are
/// themselves, numbers and booleans their JSON text, objects and arrays their compact JSON,
/// null nothing.
impl Values for serde_json::Value {
    fn value(&self, path: &[String]) -> Option<String> {
        let mut at = self;
        for segment in path {
            at = match at {
                serde_json::Value::Object(object) => object.get(segment)?,
                serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        match at {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

impl Template {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let at = offset + open;
            let inner_start = open + 2;
            let close = closing(&rest[inner_start..]).ok_or(TemplateError::Unclosed { at })?;
            let inner = &rest[inner_start..inner_start + close];
            parts.push(Part::Value(Expression::parse(inner, at)?));
            let consumed = inner_start + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The expressions, in order (to check what they refer to).
    pub fn expressions(&self) -> impl Iterator<Item = &Expression> {
        self.parts.iter().filter_map(|part| match part {
            Part::Value(expression) => Some(expression),
            Part::Text(_) => None,
        })
    }

    /// Renders with `values`; the first value missing without a default is the error.
    pub fn render(&self, values: &impl Values) -> Result<String, MissingValue> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(expression) => out.push_str(&expression.render(values)?),
            }
        }
        Ok(out)
    }
}

/// The offset of the `}}` closing an expression that starts at `inner`, skipping quoted text.
fn closing(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut quote: Option<u8> = None;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(_) if byte == b'\\' => index += 1,
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'}' && bytes.get(index + 1) == Some(&b'}') => return Some(index),
            None => {}
        }
        index += 1;
    }
    None
}

/// Why a dotted path is not a path of the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathFault {
    /// Its segments are not names (letters, digits, `_`, `-`), or one is empty.
    NotNames,
    /// It starts with none of [`ROOTS`], or is a root alone.
    UnknownRoot,
}

/// Splits a dotted path of the turn (`contact.fields.plan`) into its segments, checked the
/// same way wherever a path is written: in a template or in a condition.
pub fn parse_path(text: &str) -> Result<Vec<String>, PathFault> {
    let path: Vec<String> = text.split('.').map(str::to_owned).collect();
    let names = path.iter().all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    });
    if !names {
        return Err(PathFault::NotNames);
    }
    if path.len() < 2 || !ROOTS.contains(&path[0].as_str()) {
        return Err(PathFault::UnknownRoot);
    }
    Ok(path)
}

impl Expression {
    fn parse(inner: &str, at: usize) -> Result<Self, TemplateError> {
        let mut pieces = split_outside_quotes(inner, '|').into_iter();
        let path_text = pieces.next().unwrap_or_default().trim();
        let path = parse_path(path_text).map_err(|fault| match fault {
            PathFault::NotNames => TemplateError::BadPath {
                at,
                found: path_text.to_owned(),
            },
            PathFault::UnknownRoot => TemplateError::UnknownRoot {
                at,
                path: path_text.to_owned(),
            },
        })?;
        let filters = pieces
            .map(|piece| Filter::parse(piece.trim(), at))
            .collect::<Result<_, _>>()?;
        Ok(Self { path, filters })
    }

    /// The path, dotted.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }

    fn render(&self, values: &impl Values) -> Result<String, MissingValue> {
        let mut value = values.value(&self.path).filter(|value| !value.is_empty());
        for filter in &self.filters {
            value = filter.apply(value);
        }
        value.ok_or_else(|| MissingValue { path: self.dotted() })
    }
}

impl Filter {
    fn parse(text: &str, at: usize) -> Result<Self, TemplateError> {
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (text, None),
        };
        let no_argument = |filter: Filter, name: &'static str| match argument {
            None => Ok(filter),
            Some(_) => Err(TemplateError::BadArgument {
                at,
                name,
                problem: "takes no argument",
            }),
        };
        match name {
            "default" => {
                let quoted = argument.and_then(unquote).ok_or(TemplateError::BadArgument {
                    at,
                    name: "default",
                    problem: "needs a quoted text, e.g. default: \"there\"",
                })?;
                Ok(Self::Default(quoted))
            }
            "truncate" => {
                let count = argument
                    .and_then(|argument| argument.parse::<usize>().ok())
                    .filter(|count| *count > 0)
                    .ok_or(TemplateError::BadArgument {
                        at,
                        name: "truncate",
                        problem: "needs a count of characters above 0, e.g. truncate: 20",
                    })?;
                Ok(Self::Truncate(count))
            }
            "upcase" => no_argument(Self::Upcase, "upcase"),
            "downcase" => no_argument(Self::Downcase, "downcase"),
            "capitalize" => no_argument(Self::Capitalize, "capitalize"),
            "trim" => no_argument(Self::Trim, "trim"),
            other => Err(TemplateError::UnknownFilter {
                at,
                name: other.to_owned(),
            }),
        }
    }

    fn apply(&self, value: Option<String>) -> Option<String> {
        match self {
            Self::Default(fallback) => Some(value.unwrap_or_else(|| fallback.clone())),
            Self::Upcase => value.map(|value| value.to_uppercase()),
            Self::Downcase => value.map(|value| value.to_lowercase()),
            Self::Capitalize => value.map(|value| {
                let mut chars = value.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }),
            Self::Trim => value
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty()),
            Self::Truncate(count) => value.map(|value| value.chars().take(*count).collect()),
        }
    }
}

/// `"text"` or `'text'` without its quotes (a backslash escapes the next character).
fn unquote(argument: &str) -> Option<String> {
    let quote = argument
        .chars()
        .next()
        .filter(|first| *first == '"' || *first == '\'')?;
    let body = argument.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(next) = chars.next() {
        match next {
            '\\' => out.push(chars.next()?),
            other if other == quote => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

/// `text` split at `separator` where it stands outside quotes.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if character == '\\' => escaped = true,
            Some(open) if character == open => quote = None,
            Some(_) => {}
            None if character == '"' || character == '\'' => quote = Some(character),
            None if character == separator => {
                pieces.push(&text[start..index]);
                start = index + character.len_utf8();
            }
            None => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

impl fmt::Display for Expression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.dotted())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn values() -> serde_json::Value {
        json!({
            "contact": {"first_name": "ana", "last_name": "", "fields": {"plan": "gold", "visits": 3}},
            "flow": {"order": {"id": "A-17"}, "codes": ["x", "y"]},
            "trigger": {"message": {"text": "  hi | there  "}},
            "states": {"ask_email": {"answer": "ana@example.com"}}
        })
    }

    fn render(source: &str) -> Result<String, MissingValue> {
        Template::parse(source).unwrap().render(&values())
    }

    #[test]
    fn paths_render_from_every_root() {
        assert_eq!(
            render("Hi {{contact.first_name}}, plan {{ contact.fields.plan }} ({{contact.fields.visits}})")
                .unwrap(),
            "Hi ana, plan gold (3)"
        );
        assert_eq!(render("{{flow.order.id}}/{{flow.codes.1}}").unwrap(), "A-17/y");
        assert_eq!(render("{{states.ask_email.answer}}").unwrap(), "ana@example.com");
        assert_eq!(render("no expressions at all").unwrap(), "no expressions at all");
        assert_eq!(render("").unwrap(), "");
    }

    #[test]
    fn a_missing_or_empty_value_is_an_error_unless_a_default_says_what_to_use() {
        assert_eq!(
            render("Hello {{contact.last_name}}"),
            Err(MissingValue {
                path: "contact.last_name".to_owned()
            })
        );
        assert_eq!(
            render("Hello {{contact.nickname}}").unwrap_err().to_string(),
            "contact.nickname has no value; give the expression one with `| default: \"…\"`"
        );
        assert_eq!(
            render("Hello {{ contact.last_name | default: \"there\" }}").unwrap(),
            "Hello there"
        );
        assert_eq!(
            render("{{flow.none | default: 'a \\'b\\' | c'}}").unwrap(),
            "a 'b' | c"
        );
    }

    #[test]
    fn filters_apply_in_order() {
        assert_eq!(render("{{contact.first_name | capitalize}}").unwrap(), "Ana");
        assert_eq!(render("{{contact.first_name | upcase}}").unwrap(), "ANA");
        assert_eq!(
            render("{{trigger.message.text | trim | truncate: 2 | upcase}}").unwrap(),
            "HI"
        );
        assert_eq!(
            render("{{flow.none | default: \"ZED\" | downcase}}").unwrap(),
            "zed"
        );
        assert_eq!(render("{{flow.blank | trim | default: \"-\"}}").unwrap(), "-");
    }

    #[test]
    fn quoted_braces_do_not_close_an_expression() {
        assert_eq!(render("{{flow.none | default: \"}}\"}}!").unwrap(), "}}!");
    }

    #[test]
    fn bad_templates_name_the_offset_and_the_fault() {
        let cases = [
            ("Hi {{contact.first_name", TemplateError::Unclosed { at: 3 }),
            (
                "{{ }}",
                TemplateError::BadPath {
                    at: 0,
                    found: String::new(),
                },
            ),
            (
                "x {{contact..name}}",
                TemplateError::BadPath {
                    at: 2,
                    found: "contact..name".to_owned(),
                },
            ),
            (
                "{{ system.env }}",
                TemplateError::UnknownRoot {
                    at: 0,
                    path: "system.env".to_owned(),
                },
            ),
            (
                "{{ contact }}",
                TemplateError::UnknownRoot {
                    at: 0,
                    path: "contact".to_owned(),
                },
            ),
            (
                "{{contact.first_name | shout}}",
                TemplateError::UnknownFilter {
                    at: 0,
                    name: "shout".to_owned(),
                },
            ),
            (
                "{{contact.first_name | default: there}}",
                TemplateError::BadArgument {
                    at: 0,
                    name: "default",
                    problem: "needs a quoted text, e.g. default: \"there\"",
                },
            ),
            (
                "{{contact.first_name | truncate: 0}}",
                TemplateError::BadArgument {
                    at: 0,
                    name: "truncate",
                    problem: "needs a count of characters above 0, e.g. truncate: 20",
                },
            ),
            (
                "{{contact.first_name | upcase: 2}}",
                TemplateError::BadArgument {
                    at: 0,
                    name: "upcase",
                    problem: "takes no argument",
                },
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(Template::parse(source), Err(expected), "{source}");
        }
    }

    #[test]
    fn expressions_list_what_a_template_refers_to() {
        let template = Template::parse("{{states.ask.answer}} and {{flow.x | default: \"\"}}").unwrap();
        let paths: Vec<String> = template.expressions().map(Expression::dotted).collect();
        assert_eq!(paths, ["states.ask.answer", "flow.x"]);
    }
}
