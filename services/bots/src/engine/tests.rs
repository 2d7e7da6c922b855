use serde_json::json;

use super::*;
use crate::answer::DateOrder;

/// A contact's values, in a workspace that may have a country and read dates month first.
struct Contact(Value, Option<&'static str>, DateOrder);

impl Values for Contact {
    fn value(&self, path: &[String]) -> Option<String> {
        self.0.value(path)
    }
}

impl Facts for Contact {
    fn has_tag(&self, tag: &str) -> bool {
        tag == "vip"
    }
    fn channel(&self) -> &str {
        "whatsapp"
    }
    fn business_hours_open(&self) -> bool {
        true
    }
    fn default_country(&self) -> Option<switchboard_domain::normalize::CountryId> {
        self.1
            .and_then(|code| switchboard_domain::normalize::parse_country(code).ok())
    }
    fn date_order(&self) -> DateOrder {
        self.2
    }
}

fn new_contact() -> Contact {
    Contact(
        json!({"contact": {"first_name": "Ana", "fields": {"plan": "gold"}}}),
        None,
        DateOrder::DayFirst,
    )
}

fn flow(document: Value) -> Flow {
    let flow: Flow = serde_json::from_value(document).expect("a flow");
    assert_eq!(flow.validate(), Vec::new(), "the test flow is valid");
    flow
}

/// The identification flow: greet, ask an e-mail (3 attempts), ask a phone, route gold plans
/// to people.
fn identification() -> Flow {
    flow(json!({
        "initial_state": "greet",
        "states": [
            {"name": "greet", "type": "send_message", "properties": {"text": "Hi {{contact.first_name}}!"},
             "transitions": [{"event": "sent", "next": "ask_email"}, {"event": "failed"}]},
            {"name": "ask_email", "type": "ask",
             "properties": {"text": "Your e-mail?", "answer_type": "email", "save_to": "contact.fields.email",
                            "retry_message": "That is not an e-mail, {{contact.first_name}}.", "max_attempts": 2,
                            "timeout": "1h", "skip_if_known": true},
             "transitions": [{"event": "answered", "next": "ask_phone"}, {"event": "invalid", "next": "sorry"},
                             {"event": "no_reply", "next": "sorry"}]},
            {"name": "ask_phone", "type": "ask",
             "properties": {"text": "Thanks, {{states.ask_email.answer}}. Your phone?", "answer_type": "phone",
                            "save_to": "flow.phone"},
             "transitions": [{"event": "answered", "next": "route"}]},
            {"name": "route", "type": "split",
             "properties": {"cases": [{"when": {"value": "contact.fields.plan", "equals": "gold"}, "next": "human"}]},
             "transitions": [{"event": "no_match", "next": "sorry"}]},
            {"name": "human", "type": "transfer_to_human", "properties": {"note": "Gold customer {{flow.phone}}"}},
            {"name": "sorry", "type": "send_message", "properties": {"text": "Sorry!"},
             "transitions": [{"event": "sent"}]}
        ]
    }))
}

fn asked(text: &str, timeout: Option<u64>) -> Effect {
    let state = if text.contains("phone") {
        "ask_phone"
    } else {
        "ask_email"
    };
    Effect::Ask {
        state: state.to_owned(),
        text: text.to_owned(),
        options: Vec::new(),
        timeout_seconds: timeout,
    }
}

#[test]
fn the_identification_flow_asks_retries_saves_and_hands_over() {
    let flow = identification();
    let contact = new_contact();
    let mut execution = Execution::default();
    let effects = advance(&flow, &mut execution, Input::Start, &contact);
    assert_eq!(
        effects,
        [Effect::Send {
            state: "greet".to_owned(),
            message: json!({"text": "Hi Ana!"}).as_object().unwrap().clone(),
        }]
    );
    let effects = advance(&flow, &mut execution, Input::Outcome("sent"), &contact);
    assert_eq!(effects, [asked("Your e-mail?", Some(3_600))]);
    let effects = advance(&flow, &mut execution, Input::Reply("not an address"), &contact);
    assert_eq!(
        effects,
        [Effect::Ask {
            state: "ask_email".to_owned(),
            text: "That is not an e-mail, Ana.".to_owned(),
            options: Vec::new(),
            timeout_seconds: Some(3_600),
        }]
    );
    let effects = advance(&flow, &mut execution, Input::Reply(" Ana@Example.COM "), &contact);
    assert_eq!(
        effects,
        [
            Effect::SaveField {
                field: "email".to_owned(),
                value: "ana@example.com".to_owned(),
            },
            asked("Thanks, ana@example.com. Your phone?", None),
        ]
    );
    let effects = advance(&flow, &mut execution, Input::Reply("+1 650 555 0101"), &contact);
    assert_eq!(
        effects,
        [
            Effect::Act {
                state: "human".to_owned(),
                state_type: "transfer_to_human".to_owned(),
                properties: json!({"note": "Gold customer +16505550101"})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            Effect::End(EndReason::HandedOver),
        ]
    );
    assert_eq!(execution.variables["phone"], "+16505550101");
    assert_eq!(execution.steps, 5);
}

#[test]
fn a_known_answer_skips_the_question_and_the_last_bad_attempt_takes_invalid() {
    let flow = identification();
    let known = Contact(
        json!({"contact": {"first_name": "Ana", "fields": {"email": "ana@example.com"}}}),
        None,
        DateOrder::DayFirst,
    );
    let mut execution = Execution::default();
    advance(&flow, &mut execution, Input::Start, &known);
    let effects = advance(&flow, &mut execution, Input::Outcome("sent"), &known);
    assert_eq!(effects, [asked("Thanks, ana@example.com. Your phone?", None)]);

    let contact = new_contact();
    let mut execution = Execution::default();
    advance(&flow, &mut execution, Input::Start, &contact);
    advance(&flow, &mut execution, Input::Outcome("sent"), &contact);
    advance(&flow, &mut execution, Input::Reply("nope"), &contact);
    let effects = advance(&flow, &mut execution, Input::Reply("still nope"), &contact);
    assert_eq!(
        effects,
        [Effect::Send {
            state: "sorry".to_owned(),
            message: json!({"text": "Sorry!"}).as_object().unwrap().clone(),
        }]
    );
    let effects = advance(&flow, &mut execution, Input::Outcome("sent"), &contact);
    assert_eq!(effects, [Effect::End(EndReason::Finished)]);
    assert_eq!(
        advance(&flow, &mut execution, Input::Reply("ana@example.com"), &contact),
        [Effect::End(EndReason::Unexpected {
            state: "sorry".to_owned()
        })],
        "an ended execution takes nothing more"
    );
}

#[test]
fn answers_are_read_with_the_workspace_country_and_date_order() {
    let flow = flow(json!({
        "initial_state": "phone",
        "states": [
            {"name": "phone", "type": "ask", "properties": {"text": "Phone?", "answer_type": "phone", "save_to": "flow.phone"},
             "transitions": [{"event": "answered", "next": "birthday"}]},
            {"name": "birthday", "type": "ask", "properties": {"text": "Birthday?", "answer_type": "date", "save_to": "flow.birthday"},
             "transitions": [{"event": "answered"}]}
        ]
    }));
    let workspace = Contact(json!({"contact": {}}), Some("BR"), DateOrder::MonthFirst);
    let mut execution = Execution::default();
    advance(&flow, &mut execution, Input::Start, &workspace);
    advance(&flow, &mut execution, Input::Reply("(11) 96123-4567"), &workspace);
    assert_eq!(execution.variables["phone"], "+5511961234567");
    advance(&flow, &mut execution, Input::Reply("05/17/1990"), &workspace);
    assert_eq!(execution.variables["birthday"], "1990-05-17");
}

#[test]
fn logic_runs_inside_one_call() {
    let flow = flow(json!({
        "initial_state": "set",
        "states": [
            {"name": "set", "type": "set_variables", "properties": {"variables": {"code": "AB{{contact.first_name}}42"}},
             "transitions": [{"event": "next", "next": "count"}]},
            {"name": "count", "type": "count_characters",
             "properties": {"value": "{{flow.code}}", "save_to": "flow.length"},
             "transitions": [{"event": "done", "next": "check"}]},
            {"name": "check", "type": "split",
             "properties": {"cases": [{"when": {"value": "flow.length", "at_least": 8}, "next": "long"},
                                      {"when": {"has_tag": "vip"}, "next": "vip"}]},
             "transitions": [{"event": "no_match"}]},
            {"name": "long", "type": "end"},
            {"name": "vip", "type": "add_tag", "properties": {"tag": "seen"}, "transitions": [{"event": "done"}]}
        ]
    }));
    let mut execution = Execution::default();
    let effects = advance(&flow, &mut execution, Input::Start, &new_contact());
    assert_eq!(execution.variables["code"], "ABAna42");
    assert_eq!(execution.variables["length"], "7");
    assert_eq!(
        effects,
        [Effect::Act {
            state: "vip".to_owned(),
            state_type: "add_tag".to_owned(),
            properties: json!({"tag": "seen"}).as_object().unwrap().clone(),
        }],
        "7 characters is under 8, so the vip case is taken"
    );
    assert_eq!(
        advance(&flow, &mut execution, Input::Outcome("done"), &new_contact()),
        [Effect::End(EndReason::Finished)]
    );
}

#[test]
fn loops_missing_values_and_stray_inputs_end_the_execution_with_a_reason() {
    let looping = flow(json!({
        "initial_state": "again",
        "states": [{"name": "again", "type": "jump", "properties": {"to": "again"}}]
    }));
    let mut execution = Execution::default();
    assert_eq!(
        advance(&looping, &mut execution, Input::Start, &new_contact()),
        [Effect::End(EndReason::Loop {
            state: "again".to_owned()
        })]
    );
    assert_eq!(execution.repeats, MAX_REPEATS + 1);

    let missing = flow(json!({
        "initial_state": "hi",
        "states": [{"name": "hi", "type": "send_message", "properties": {"text": "Hi {{contact.last_name}}"}}]
    }));
    let mut execution = Execution::default();
    let effects = advance(&missing, &mut execution, Input::Start, &new_contact());
    assert!(
        matches!(&effects[..], [Effect::End(EndReason::MissingValue { state, error })]
            if state == "hi" && error.starts_with("contact.last_name has no value")),
        "{effects:?}"
    );

    let flow = identification();
    let mut execution = Execution::default();
    advance(&flow, &mut execution, Input::Start, &new_contact());
    assert_eq!(
        advance(&flow, &mut execution, Input::Reply("hello?"), &new_contact()),
        [Effect::End(EndReason::Unexpected {
            state: "greet".to_owned()
        })],
        "a reply while sending is not an answer"
    );
    let mut execution = Execution::default();
    advance(&flow, &mut execution, Input::Start, &new_contact());
    assert_eq!(
        advance(&flow, &mut execution, Input::Outcome("failed"), &new_contact()),
        [Effect::End(EndReason::Finished)]
    );
}
