//! The turn as an execution's templates and conditions see it, and rendering a state's texts.

use serde_json::Value;

use super::Execution;
use crate::condition::Facts;
use crate::flow::State;
use crate::states::{Kind, state_type};
use crate::template::{Template, Values};

/// The turn's values as templates and conditions see them: the execution's variables and
/// outputs, everything else from the runtime's facts.
pub(super) struct Turn<'a, F> {
    pub(super) execution: &'a Execution,
    pub(super) facts: &'a F,
}

impl<F: Facts> Values for Turn<'_, F> {
    fn value(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str) {
            Some("flow") => self.execution.variables.get(path.get(1)?).cloned(),
            Some("states") => self
                .execution
                .outputs
                .get(path.get(1)?)?
                .get(path.get(2)?)
                .cloned(),
            _ => self.facts.value(path),
        }
    }
}

impl<F: Facts> Facts for Turn<'_, F> {
    fn has_tag(&self, tag: &str) -> bool {
        self.facts.has_tag(tag)
    }
    fn channel(&self) -> &str {
        self.facts.channel()
    }
    fn business_hours_open(&self) -> bool {
        self.facts.business_hours_open()
    }
}

/// `source` rendered for the turn; the error is a parse or missing-value message.
pub(super) fn render(source: &str, execution: &Execution, facts: &impl Facts) -> Result<String, String> {
    let template = Template::parse(source).map_err(|error| error.to_string())?;
    template
        .render(&Turn { execution, facts })
        .map_err(|error| error.to_string())
}

/// An object of templates, each rendered (none when absent).
pub(super) fn render_map(
    value: Option<&Value>,
    execution: &Execution,
    facts: &impl Facts,
) -> Result<Vec<(String, String)>, String> {
    let Some(object) = value.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    object
        .iter()
        .map(|(key, item)| {
            Ok((
                key.clone(),
                render(item.as_str().unwrap_or_default(), execution, facts)?,
            ))
        })
        .collect()
}

/// A question's options, rendered.
pub(super) fn options(
    state: &State,
    execution: &Execution,
    facts: &impl Facts,
) -> Result<Vec<String>, String> {
    state
        .properties
        .get("options")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|option| render(option.as_str().unwrap_or_default(), execution, facts))
        .collect()
}

/// The state's properties with every text (and list or map of texts) rendered.
pub(super) fn render_properties(
    state: &State,
    execution: &Execution,
    facts: &impl Facts,
) -> Result<serde_json::Map<String, Value>, String> {
    let mut rendered = serde_json::Map::new();
    let kinds = state_type(&state.state_type)
        .map(|rule| rule.properties)
        .unwrap_or_default();
    for (key, value) in &state.properties {
        let kind = kinds
            .iter()
            .find(|property| property.name == key)
            .map(|property| property.kind);
        let value = match (kind, value) {
            (Some(Kind::Text), Value::String(source)) => Value::String(render(source, execution, facts)?),
            (Some(Kind::Texts), Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .map(|item| {
                        render(item.as_str().unwrap_or_default(), execution, facts).map(Value::String)
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Some(Kind::TextMap), Value::Object(_)) => Value::Object(
                render_map(Some(value), execution, facts)?
                    .into_iter()
                    .map(|(key, value)| (key, Value::String(value)))
                    .collect(),
            ),
            _ => value.clone(),
        };
        rendered.insert(key.clone(), value);
    }
    Ok(rendered)
}
