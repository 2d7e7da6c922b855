//! Running a flow without I/O: [`advance`] moves an [`Execution`] through its flow's states and
//! returns what the runtime must do ([`Effect`]s). Logic (split, set_variables, jump,
//! count_characters, end) runs inside the call; a state that needs the outside world (a send,
//! a question, a timer, an action in another service) ends the call with its effect, and the
//! runtime calls again with the outcome ([`Input`]). The execution is plain data, so the
//! runtime journals it in the same transaction as the effects it records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answer::{AnswerType, Reading, read_answer};
use crate::condition::{Condition, Facts};
use crate::flow::{Flow, State};
use crate::template::Values;
use turn::{Turn, options, render, render_map, render_properties};

/// Most states one execution may enter (Twilio's limit too).
pub const MAX_STEPS: u32 = 1_000;
/// Most times in a row one state may be entered before the execution is stopped as a loop.
pub const MAX_REPEATS: u32 = 10;
/// Failed answers a question allows when it does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Where an execution is, and what it has gathered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The state it is in (empty before it starts).
    pub state: String,
    /// The flow's variables (`flow.<name>`).
    pub variables: BTreeMap<String, String>,
    /// What states produced (`states.<state>.<output>`), e.g. a question's `answer`.
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// States entered so far.
    pub steps: u32,
    /// Times in a row the current state was entered.
    pub repeats: u32,
    /// Answers to the current question that were not answers.
    pub attempts: u32,
    /// Set once the execution ended; every later input is unexpected.
    pub ended: bool,
}

/// What the runtime tells the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Start at the initial state.
    Start,
    /// The current state's effect ended with this event (`sent`, `failed`, `done`, …).
    Outcome(&'a str),
    /// The customer replied while the current question waits.
    Reply(&'a str),
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a message as the bot; answer with `Outcome("sent" | "failed")`.
    Send {
        /// The state sending it.
        state: String,
        /// Its properties with every text rendered.
        message: serde_json::Map<String, Value>,
    },
    /// Ask a question (or again, after a reply that was not an answer) and wait for `Reply`, or
    /// for `Outcome("no_reply")` when `timeout_seconds` pass (a retry starts the timer again).
    Ask {
        /// The asking state.
        state: String,
        /// The question, or the retry message.
        text: String,
        /// The options of a choice question.
        options: Vec<String>,
        /// When the question times out.
        timeout_seconds: Option<u64>,
    },
    /// Save a value to the contact's field (a question's answer, a tool's result); nothing
    /// waits for it.
    SaveField {
        /// The field key.
        field: String,
        /// The value.
        value: String,
    },
    /// Do what a state of another kind does (a timer, an action in another service, a call);
    /// answer with `Outcome(<one of its type's events>)`.
    Act {
        /// The acting state.
        state: String,
        /// Its type, e.g. `add_tag` or `wait`.
        state_type: String,
        /// Its properties with every text rendered.
        properties: serde_json::Map<String, Value>,
    },
    /// The execution is over.
    End(EndReason),
}

/// Why an execution ended (journaled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// It reached `end`, or a transition without `next`.
    Finished,
    /// The state's event has no transition.
    NoTransition {
        /// The state.
        state: String,
        /// The event.
        event: String,
    },
    /// People took the conversation over (`transfer_to_human`).
    HandedOver,
    /// More than [`MAX_STEPS`] states.
    StepLimit,
    /// The same state more than [`MAX_REPEATS`] times in a row.
    Loop {
        /// The state.
        state: String,
    },
    /// A template of the state lacks a value and has no default.
    MissingValue {
        /// The state.
        state: String,
        /// The rendering error.
        error: String,
    },
    /// The input does not fit where the execution is (e.g. a reply with no question waiting).
    Unexpected {
        /// The state.
        state: String,
    },
}

/// Moves `execution` on `input` and returns what the runtime must do, the last effect being
/// the one it waits on (or [`Effect::End`]). `flow` must be valid ([`Flow::validate`]).
pub fn advance(flow: &Flow, execution: &mut Execution, input: Input<'_>, facts: &impl Facts) -> Vec<Effect> {
    if execution.ended {
        return vec![Effect::End(EndReason::Unexpected {
            state: execution.state.clone(),
        })];
    }
    let effects = step_on(flow, execution, input, facts);
    execution.ended = matches!(effects.last(), Some(Effect::End(_)));
    effects
}

fn step_on(flow: &Flow, execution: &mut Execution, input: Input<'_>, facts: &impl Facts) -> Vec<Effect> {
    let mut effects = Vec::new();
    let next = match input {
        Input::Start => Some(flow.initial_state.clone()),
        Input::Outcome(event) => follow(flow, execution, event, &mut effects),
        Input::Reply(reply) => match current(flow, execution) {
            Some(state) if state.state_type == "ask" => {
                answer(flow, execution, state, reply, facts, &mut effects)
            }
            _ => {
                effects.push(Effect::End(EndReason::Unexpected {
                    state: execution.state.clone(),
                }));
                None
            }
        },
    };
    if let Some(next) = next {
        run(flow, execution, next, facts, &mut effects);
    }
    effects
}

fn current<'f>(flow: &'f Flow, execution: &Execution) -> Option<&'f State> {
    flow.states.iter().find(|state| state.name == execution.state)
}

/// The state `event` of the current state leads to; `None` (with an end) when none.
fn follow(flow: &Flow, execution: &Execution, event: &str, effects: &mut Vec<Effect>) -> Option<String> {
    let transition = current(flow, execution).and_then(|state| {
        state
            .transitions
            .iter()
            .find(|transition| transition.event == event)
    });
    match transition {
        Some(transition) if !transition.next.is_empty() => Some(transition.next.clone()),
        Some(_) => {
            effects.push(Effect::End(EndReason::Finished));
            None
        }
        None => {
            effects.push(Effect::End(EndReason::NoTransition {
                state: execution.state.clone(),
                event: event.to_owned(),
            }));
            None
        }
    }
}

/// Enters `name` and runs states until one needs the outside world or the execution ends.
fn run(
    flow: &Flow,
    execution: &mut Execution,
    mut name: String,
    facts: &impl Facts,
    effects: &mut Vec<Effect>,
) {
    loop {
        execution.steps += 1;
        execution.repeats = if execution.state == name {
            execution.repeats + 1
        } else {
            1
        };
        execution.state = name;
        execution.attempts = 0;
        if execution.steps > MAX_STEPS {
            effects.push(Effect::End(EndReason::StepLimit));
            return;
        }
        if execution.repeats > MAX_REPEATS {
            effects.push(Effect::End(EndReason::Loop {
                state: execution.state.clone(),
            }));
            return;
        }
        let Some(state) = current(flow, execution) else {
            effects.push(Effect::End(EndReason::Unexpected {
                state: execution.state.clone(),
            }));
            return;
        };
        let step = match step(state, execution, facts, effects) {
            Ok(step) => step,
            Err(error) => {
                effects.push(Effect::End(EndReason::MissingValue {
                    state: state.name.clone(),
                    error,
                }));
                return;
            }
        };
        let next = match step {
            Step::Goto(next) => Some(next),
            Step::Event(event) => follow(flow, execution, event, effects),
            Step::Wait => None,
        };
        match next {
            Some(next) => name = next,
            None => return,
        }
    }
}

/// What a state did when entered.
enum Step {
    /// Go straight to this state.
    Goto(String),
    /// Take this event's transition.
    Event(&'static str),
    /// The last effect waits for the runtime (or ended the execution).
    Wait,
}

fn step(
    state: &State,
    execution: &mut Execution,
    facts: &impl Facts,
    effects: &mut Vec<Effect>,
) -> Result<Step, String> {
    let property = |key: &str| state.properties.get(key);
    let text = |key: &str| property(key).and_then(Value::as_str).unwrap_or_default();
    Ok(match state.state_type.as_str() {
        "end" => {
            effects.push(Effect::End(EndReason::Finished));
            Step::Wait
        }
        "jump" => Step::Goto(text("to").to_owned()),
        "split" => {
            let turn = Turn { execution, facts };
            let cases = property("cases")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let taken = cases.iter().find(|case| {
                case.get("when")
                    .and_then(|when| Condition::parse(when).ok())
                    .is_some_and(|condition| condition.holds(&turn))
            });
            match taken.and_then(|case| case.get("next")).and_then(Value::as_str) {
                Some(next) => Step::Goto(next.to_owned()),
                None => Step::Event("no_match"),
            }
        }
        "set_variables" => {
            let rendered = render_map(property("variables"), execution, facts)?;
            for (name, value) in rendered {
                execution.variables.insert(name, value);
            }
            Step::Event("next")
        }
        "count_characters" => {
            let value = render(text("value"), execution, facts)?;
            save(
                execution,
                &state.name,
                text("save_to"),
                value.chars().count().to_string(),
                effects,
            );
            Step::Event("done")
        }
        "send_message" => {
            effects.push(Effect::Send {
                state: state.name.clone(),
                message: render_properties(state, execution, facts)?,
            });
            Step::Wait
        }
        "ask" => {
            let known = property("skip_if_known")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .then(|| Turn { execution, facts }.value(&target_path(text("save_to"))))
                .flatten()
                .filter(|value| !value.is_empty());
            if let Some(known) = known {
                output(execution, &state.name, "answer", known);
                return Ok(Step::Event("answered"));
            }
            effects.push(Effect::Ask {
                state: state.name.clone(),
                text: render(text("text"), execution, facts)?,
                options: options(state, execution, facts)?,
                timeout_seconds: question_timeout(state),
            });
            Step::Wait
        }
        other => {
            effects.push(Effect::Act {
                state: state.name.clone(),
                state_type: state.state_type.clone(),
                properties: render_properties(state, execution, facts)?,
            });
            // The bot stops at once when people take over: nothing answers this effect.
            if other == "transfer_to_human" {
                effects.push(Effect::End(EndReason::HandedOver));
            }
            Step::Wait
        }
    })
}

/// Reads a reply to the current question: saved and `answered`, asked again with the retry
/// message, or `invalid` after the last attempt.
fn answer(
    flow: &Flow,
    execution: &mut Execution,
    state: &State,
    reply: &str,
    facts: &impl Facts,
    effects: &mut Vec<Effect>,
) -> Option<String> {
    let text = |key: &str| {
        state
            .properties
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let answer_type = AnswerType::parse(text("answer_type")).unwrap_or(AnswerType::Text);
    let options = options(state, execution, facts).unwrap_or_default();
    let reading = Reading {
        options: &options,
        default_country: facts.default_country(),
        date_order: facts.date_order(),
    };
    match read_answer(answer_type, reply, &reading) {
        Ok(value) => {
            save(execution, &state.name, text("save_to"), value.clone(), effects);
            output(execution, &state.name, "answer", value);
            follow(flow, execution, "answered", effects)
        }
        Err(_) => {
            execution.attempts += 1;
            let allowed = state
                .properties
                .get("max_attempts")
                .and_then(Value::as_u64)
                .and_then(|attempts| u32::try_from(attempts).ok())
                .unwrap_or(DEFAULT_MAX_ATTEMPTS);
            if execution.attempts >= allowed {
                return follow(flow, execution, "invalid", effects);
            }
            let retry = match state.properties.get("retry_message").and_then(Value::as_str) {
                Some(retry) => render(retry, execution, facts),
                None => render(text("text"), execution, facts),
            };
            match retry {
                Ok(retry) => effects.push(Effect::Ask {
                    state: state.name.clone(),
                    text: retry,
                    options,
                    timeout_seconds: question_timeout(state),
                }),
                Err(error) => effects.push(Effect::End(EndReason::MissingValue {
                    state: state.name.clone(),
                    error,
                })),
            }
            None
        }
    }
}

/// A question's `timeout` in seconds, if it has one.
fn question_timeout(state: &State) -> Option<u64> {
    state
        .properties
        .get("timeout")
        .and_then(Value::as_str)
        .and_then(crate::flow::duration_seconds)
}

/// `contact.fields.<key>` or `flow.<variable>` as a template path.
fn target_path(target: &str) -> Vec<String> {
    target.split('.').map(str::to_owned).collect()
}

/// Saves `value` where `target` says: a flow variable at once, a contact field by an effect.
fn save(execution: &mut Execution, state: &str, target: &str, value: String, effects: &mut Vec<Effect>) {
    if let Some(variable) = target.strip_prefix("flow.") {
        execution.variables.insert(variable.to_owned(), value.clone());
    } else if let Some(field) = target.strip_prefix("contact.fields.") {
        effects.push(Effect::SaveField {
            field: field.to_owned(),
            value: value.clone(),
        });
    }
    output(execution, state, "value", value);
}

fn output(execution: &mut Execution, state: &str, name: &str, value: String) {
    execution
        .outputs
        .entry(state.to_owned())
        .or_default()
        .insert(name.to_owned(), value);
}

mod turn;

#[cfg(test)]
mod tests;
