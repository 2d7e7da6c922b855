//! A flow definition: a state machine of named states, each with a `type` (one of
//! [`crate::states::STATE_TYPES`]), its `properties` and its `transitions` (`{event, next}`;
//! an empty or missing `next` ends the execution), entered at `initial_state`. Validation finds
//! every fault at once and names the state and property of each.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::states::{Kind, STATE_TYPES, StateType, state_type};
use crate::trigger::{MAX_TRIGGERS, Matcher, Trigger};
pub use values::{MAX_CASES, duration_seconds};
use values::{check_value, is_name};

/// Most states a flow may have.
pub const MAX_STATES: usize = 1_000;
/// The longest duration a `wait`, `timeout` or similar property may give: an execution's limit.
pub const MAX_DURATION_SECONDS: u64 = 30 * 24 * 3_600;

/// A flow definition as authors write it (JSON, or YAML where files are loaded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// What the flow is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The state an execution starts in.
    pub initial_state: String,
    /// What starts the flow (besides `StartFlow` and other flows' `start_flow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// What a trigger does while the conversation already runs an execution.
    #[serde(default)]
    pub when_busy: WhenBusy,
    /// The states, in the author's order.
    pub states: Vec<State>,
}

/// What a trigger of this flow does while its conversation already runs an execution (one
/// active execution per conversation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenBusy {
    /// Nothing starts; the running execution keeps the conversation.
    #[default]
    Refuse,
    /// This flow starts when the running execution ends.
    Wait,
    /// The running execution stops (journaled) and this flow starts.
    Replace,
}

/// One state of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Unique within the flow; transitions and templates (`states.<name>.…`) refer to it.
    pub name: String,
    /// Its state type, e.g. `send_message`.
    #[serde(rename = "type")]
    pub state_type: String,
    /// Its settings, as its type takes them.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub properties: serde_json::Map<String, Value>,
    /// Where each of its events leads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

/// Where one event of a state leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// One of the events of the state's type.
    pub event: String,
    /// The next state's name; empty ends the execution.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next: String,
}

/// One fault of a flow, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The state at fault, if the fault is in one.
    pub state: Option<String>,
    /// The property (or `transitions`) at fault, if any.
    pub property: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.state, &self.property) {
            (Some(state), Some(property)) => {
                write!(formatter, "state {state:?}, {property}: {}", self.message)
            }
            (Some(state), None) => write!(formatter, "state {state:?}: {}", self.message),
            (None, Some(property)) => write!(formatter, "{property}: {}", self.message),
            (None, None) => formatter.write_str(&self.message),
        }
    }
}

/// Collects problems while a flow is checked.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn flow(&mut self, property: &str, message: String) {
        self.0.push(Problem {
            state: None,
            property: Some(property.to_owned()),
            message,
        });
    }

    fn state(&mut self, state: &str, property: Option<&str>, message: String) {
        self.0.push(Problem {
            state: Some(state.to_owned()),
            property: property.map(str::to_owned),
            message,
        });
    }
}

impl Flow {
    /// Parses a flow from JSON; a document that is not a flow at all is one problem naming the
    /// line and column.
    pub fn from_json(text: &str) -> Result<Self, Vec<Problem>> {
        serde_json::from_str(text).map_err(|error| {
            vec![Problem {
                state: None,
                property: None,
                message: format!("not a flow definition: {error}"),
            }]
        })
    }

    /// Every fault of the flow; empty when it may be published.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Problems::default();
        if self.states.is_empty() || self.states.len() > MAX_STATES {
            problems.flow(
                "states",
                format!(
                    "a flow has 1 to {MAX_STATES} states, this one {}",
                    self.states.len()
                ),
            );
        }
        if self.triggers.len() > MAX_TRIGGERS {
            problems.flow("triggers", format!("a flow has at most {MAX_TRIGGERS} triggers"));
        }
        for (index, trigger) in self.triggers.iter().enumerate() {
            if let Err(message) = Matcher::new(trigger) {
                problems.flow(&format!("triggers[{index}]"), message);
            }
        }
        let mut names = BTreeSet::new();
        for state in &self.states {
            if !is_name(&state.name) {
                problems.state(
                    &state.name,
                    Some("name"),
                    "a state name is 1 to 64 of letters, digits, `_` or `-`".to_owned(),
                );
            }
            if !names.insert(state.name.as_str()) {
                problems.state(
                    &state.name,
                    Some("name"),
                    "another state has this name".to_owned(),
                );
            }
        }
        if !names.contains(self.initial_state.as_str()) {
            problems.flow(
                "initial_state",
                format!("{:?} is not the name of a state", self.initial_state),
            );
        }
        for state in &self.states {
            match state_type(&state.state_type) {
                Some(rule) => check_state(state, rule, &names, &mut problems),
                None => problems.state(
                    &state.name,
                    Some("type"),
                    format!(
                        "{:?} is not a state type; the types are {}",
                        state.state_type,
                        STATE_TYPES
                            .iter()
                            .map(|rule| rule.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        if names.contains(self.initial_state.as_str()) {
            let reached = self.reachable();
            for state in &self.states {
                if !reached.contains(state.name.as_str()) {
                    problems.state(
                        &state.name,
                        None,
                        format!("no transition leads here from {:?}", self.initial_state),
                    );
                }
            }
        }
        problems.0
    }

    /// The names of the states an execution can reach from `initial_state`.
    fn reachable(&self) -> BTreeSet<&str> {
        let by_name: BTreeMap<&str, &State> = self
            .states
            .iter()
            .map(|state| (state.name.as_str(), state))
            .collect();
        let mut reached = BTreeSet::from([self.initial_state.as_str()]);
        let mut queue = VecDeque::from([self.initial_state.as_str()]);
        while let Some(name) = queue.pop_front() {
            let Some(state) = by_name.get(name) else {
                continue;
            };
            for next in successors(state) {
                if by_name.contains_key(next) && reached.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        reached
    }
}

/// The states `state` can lead to: its transitions, and the states its properties name.
fn successors(state: &State) -> Vec<&str> {
    let mut next: Vec<&str> = state
        .transitions
        .iter()
        .map(|transition| transition.next.as_str())
        .filter(|next| !next.is_empty())
        .collect();
    let Some(rule) = state_type(&state.state_type) else {
        return next;
    };
    for property in rule.properties {
        match (property.kind, state.properties.get(property.name)) {
            (Kind::State, Some(Value::String(name))) => next.push(name),
            (Kind::Cases, Some(Value::Array(cases))) => next.extend(
                cases
                    .iter()
                    .filter_map(|case| case.get("next").and_then(Value::as_str)),
            ),
            _ => {}
        }
    }
    next
}

fn check_state(state: &State, rule: &StateType, names: &BTreeSet<&str>, problems: &mut Problems) {
    let name = state.name.as_str();
    for key in state.properties.keys() {
        if !rule.properties.iter().any(|property| property.name == key) {
            let known: Vec<&str> = rule.properties.iter().map(|property| property.name).collect();
            let takes = if known.is_empty() {
                "no properties".to_owned()
            } else {
                known.join(", ")
            };
            problems.state(
                name,
                Some(key),
                format!("{} takes no property {key:?}; it takes {takes}", rule.name),
            );
        }
    }
    for property in rule.properties {
        match state.properties.get(property.name) {
            Some(value) => {
                if let Err(message) = check_value(property.kind, value, names) {
                    problems.state(name, Some(property.name), message);
                }
            }
            None if property.required => {
                problems.state(name, Some(property.name), format!("{} needs it", rule.name));
            }
            None => {}
        }
    }
    if !rule.any_of.is_empty() && !rule.any_of.iter().any(|key| state.properties.contains_key(*key)) {
        problems.state(
            name,
            None,
            format!("{} needs at least one of {}", rule.name, rule.any_of.join(", ")),
        );
    }
    // The one rule between two properties: a choice needs its options.
    if rule.name == "ask"
        && state.properties.get("answer_type").and_then(Value::as_str) == Some("choice")
        && !state.properties.contains_key("options")
    {
        problems.state(
            name,
            Some("options"),
            "a choice question needs its options".to_owned(),
        );
    }
    let mut seen = BTreeSet::new();
    for transition in &state.transitions {
        if !rule.events.contains(&transition.event.as_str()) {
            let events = if rule.events.is_empty() {
                "none: nothing follows it".to_owned()
            } else {
                rule.events.join(", ")
            };
            problems.state(
                name,
                Some("transitions"),
                format!(
                    "{} has no event {:?}; its events are {events}",
                    rule.name, transition.event
                ),
            );
        }
        if !seen.insert(transition.event.as_str()) {
            problems.state(
                name,
                Some("transitions"),
                format!("event {:?} has two transitions", transition.event),
            );
        }
        if !transition.next.is_empty() && !names.contains(transition.next.as_str()) {
            problems.state(
                name,
                Some("transitions"),
                format!(
                    "event {:?} leads to {:?}, which is not a state",
                    transition.event, transition.next
                ),
            );
        }
    }
}

mod values;

#[cfg(test)]
mod tests;
