use serde_json::json;

use super::*;

/// The identification flow of the issue: ask for an e-mail (skipped when known), then a phone.
fn identification() -> serde_json::Value {
    json!({
        "description": "Ask a new contact for an e-mail and a phone",
        "initial_state": "greet",
        "triggers": [{"type": "new_conversation"}, {"type": "keyword", "values": ["e-mail", "cadastro"], "priority": 1}],
        "when_busy": "wait",
        "states": [
            {"name": "greet", "type": "send_message",
             "properties": {"text": "Hi {{ contact.first_name | default: \"there\" }}!"},
             "transitions": [{"event": "sent", "next": "ask_email"}, {"event": "failed"}]},
            {"name": "ask_email", "type": "ask",
             "properties": {"text": "What is your e-mail?", "answer_type": "email",
                            "save_to": "contact.fields.email", "retry_message": "That is not an e-mail address.",
                            "max_attempts": 3, "timeout": "1h", "skip_if_known": true},
             "transitions": [{"event": "answered", "next": "ask_phone"}, {"event": "invalid", "next": "human"},
                             {"event": "no_reply"}]},
            {"name": "ask_phone", "type": "ask",
             "properties": {"text": "Thanks {{states.ask_email.answer}}. Your phone?", "answer_type": "phone",
                            "save_to": "contact.fields.phone"},
             "transitions": [{"event": "answered", "next": "route"}]},
            {"name": "route", "type": "split",
             "properties": {"cases": [{"when": {"value": "contact.fields.plan", "equals": "gold"}, "next": "human"}]},
             "transitions": [{"event": "no_match", "next": "bye"}]},
            {"name": "human", "type": "transfer_to_human", "properties": {"team": "support"}},
            {"name": "bye", "type": "end"}
        ]
    })
}

fn flow(document: serde_json::Value) -> Flow {
    serde_json::from_value(document).expect("a flow document")
}

fn problems(document: serde_json::Value) -> Vec<String> {
    flow(document)
        .validate()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `identification()` with `change` applied to the state named `state`.
fn with_state(state: &str, change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let mut document = identification();
    let states = document["states"].as_array_mut().expect("states");
    let target = states
        .iter_mut()
        .find(|candidate| candidate["name"] == state)
        .expect("the state exists");
    change(target);
    document
}

/// Fails unless `found` holds exactly the problem `expected`.
fn assert_found(found: &[String], expected: &str) {
    assert!(
        found.iter().any(|problem| problem == expected),
        "expected {expected:?} in {found:#?}"
    );
}

#[test]
fn a_valid_flow_has_no_problems_and_round_trips() {
    let parsed = flow(identification());
    assert_eq!(parsed.validate(), Vec::new());
    let again: Flow = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
}

#[test]
fn every_problem_names_its_state_and_property() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            with_state("greet", |state| {
                state["transitions"][0]["next"] = json!("ask_mail")
            }),
            "state \"greet\", transitions: event \"sent\" leads to \"ask_mail\", which is not a state",
        ),
        (
            with_state("greet", |state| state["type"] = json!("sned_message")),
            "state \"greet\", type: \"sned_message\" is not a state type; the types are send_message, ask,",
        ),
        (
            with_state("ask_email", |state| {
                state["properties"]["max_attempts"] = json!("three")
            }),
            "state \"ask_email\", max_attempts: must be a whole number from 1 to 10",
        ),
        (
            with_state("ask_email", |state| {
                state["properties"]["answer_type"] = json!("emial")
            }),
            "state \"ask_email\", answer_type: \"emial\" is not one of text, number, email, phone, date, time, choice",
        ),
        (
            with_state("ask_email", |state| {
                state["properties"]["timeout"] = json!("45 days")
            }),
            "state \"ask_email\", timeout: \"45 days\" is not a duration up to 30 days",
        ),
        (
            with_state("ask_email", |state| {
                state["properties"]["save_to"] = json!("email")
            }),
            "state \"ask_email\", save_to: \"email\" is not a place to save to: use contact.fields.<key> or flow.<variable>",
        ),
        (
            with_state("ask_email", |state| {
                state["properties"].as_object_mut().unwrap().remove("text");
            }),
            "state \"ask_email\", text: ask needs it",
        ),
        (
            with_state("ask_email", |state| state["properties"]["colour"] = json!("red")),
            "state \"ask_email\", colour: ask takes no property \"colour\"; it takes text, answer_type, save_to,",
        ),
        (
            with_state("greet", |state| {
                state["properties"]["text"] = json!("Hi {{contact.first_name")
            }),
            "state \"greet\", text: bad template: at byte 3: `{{` is never closed with `}}`",
        ),
        (
            with_state("ask_phone", |state| {
                state["properties"]["text"] = json!("{{states.ask_mail.answer}}")
            }),
            "state \"ask_phone\", text: bad template: states.ask_mail.answer refers to state \"ask_mail\", which the flow does not have",
        ),
        (
            with_state("greet", |state| {
                state["transitions"][1]["event"] = json!("delivered")
            }),
            "state \"greet\", transitions: send_message has no event \"delivered\"; its events are sent, failed",
        ),
        (
            with_state("greet", |state| state["transitions"][1]["event"] = json!("sent")),
            "state \"greet\", transitions: event \"sent\" has two transitions",
        ),
        (
            with_state("greet", |state| {
                state["properties"] = json!({"buttons": ["Yes", "No"]});
            }),
            "state \"greet\": send_message needs at least one of text, media_url, template",
        ),
        (
            with_state("route", |state| {
                state["properties"]["cases"][0]["when"] = json!({"value": "contact.fields.plan", "bigger": 1})
            }),
            "state \"route\", cases: case 0: when: \"bigger\" is not an operator",
        ),
        (
            with_state("ask_email", |state| {
                state["properties"]["answer_type"] = json!("choice")
            }),
            "state \"ask_email\", options: a choice question needs its options",
        ),
        (
            with_state("route", |state| {
                state["properties"]["cases"][0]["next"] = json!("nobody")
            }),
            "state \"route\", cases: case 0 leads to \"nobody\", which is not a state",
        ),
        (
            with_state("human", |state| {
                state["transitions"] = json!([{"event": "done", "next": "bye"}])
            }),
            "state \"human\", transitions: transfer_to_human has no event \"done\"; its events are none: nothing follows it",
        ),
        (
            with_state("ask_phone", |state| {
                state["properties"]["text"] = json!("{{states.ask_email}}")
            }),
            "state \"ask_phone\", text: bad template: states.ask_email is not of the form states.<state>.<output>",
        ),
        (
            with_state("greet", |state| {
                state["properties"]["text"] = json!("{{flow.order.id}}")
            }),
            "state \"greet\", text: bad template: flow.order.id is not of the form flow.<variable>",
        ),
        (
            with_state("ask_email", |state| state["properties"]["timeout"] = json!("+5m")),
            "state \"ask_email\", timeout: \"+5m\" is not a duration",
        ),
    ];
    for (document, expected) in cases {
        let found = problems(document);
        assert!(
            found.iter().any(|problem| problem.starts_with(expected)),
            "expected a problem starting with {expected:?}, got {found:#?}"
        );
    }
}

#[test]
fn unreachable_states_duplicate_names_and_a_missing_start_are_found() {
    let unreachable = with_state("ask_phone", |state| state["transitions"] = json!([]));
    let found = problems(unreachable);
    assert_found(&found, "state \"route\": no transition leads here from \"greet\"");
    assert_found(&found, "state \"bye\": no transition leads here from \"greet\"");
    assert!(
        !found
            .iter()
            .any(|problem| problem.starts_with("state \"human\": no transition")),
        "human is reached from ask_email's invalid event: {found:#?}"
    );

    let mut document = identification();
    document["states"][5]["name"] = json!("human");
    document["initial_state"] = json!("start");
    let found = problems(document);
    assert_found(&found, "state \"human\", name: another state has this name");
    assert_found(&found, "initial_state: \"start\" is not the name of a state");
}

#[test]
fn a_bad_trigger_is_named_by_its_position() {
    let mut document = identification();
    document["triggers"][1] = json!({"type": "keyword", "values": ["(oops"], "match": "regex"});
    let found = problems(document);
    assert!(
        found
            .iter()
            .any(|problem| problem.starts_with("triggers[1]: values: \"(oops\" is not a regular expression")),
        "{found:#?}"
    );
    let mut document = identification();
    document["when_busy"] = json!("queue");
    assert!(
        Flow::from_json(&document.to_string()).is_err(),
        "when_busy is refuse, wait or replace"
    );
}

#[test]
fn a_split_reaches_the_states_its_cases_name() {
    let document = with_state("route", |state| state["transitions"] = json!([]));
    let found = problems(document);
    assert_found(&found, "state \"bye\": no transition leads here from \"greet\"");
    assert!(
        !found
            .iter()
            .any(|problem| problem.contains("\"human\": no transition"))
    );
}

#[test]
fn a_document_that_is_not_a_flow_says_where() {
    let found = Flow::from_json(
        "{\"initial_state\": \"a\", \"states\": [{\"name\": \"a\", \"type\": \"end\", \"colour\": 1}]}",
    )
    .unwrap_err();
    assert!(found[0].message.contains("unknown field `colour`"), "{found:?}");
    let found = Flow::from_json("{\"initial_state\": ").unwrap_err();
    assert!(found[0].message.contains("line 1"), "{found:?}");
}

#[test]
fn durations_read_their_unit() {
    assert_eq!(duration_seconds("90s"), Some(90));
    assert_eq!(duration_seconds("5m"), Some(300));
    assert_eq!(duration_seconds("2h"), Some(7_200));
    assert_eq!(duration_seconds("1d"), Some(86_400));
    assert_eq!(duration_seconds("1w"), None);
    assert_eq!(duration_seconds("m"), None);
    assert_eq!(duration_seconds(""), None);
}
