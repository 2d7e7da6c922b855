//! The flow definition's JSON Schema (draft 2020-12), made from the state table so the schema
//! that ships in the repo (`services/bots/schema/flow.schema.json`, served by the API) and the
//! validator cannot disagree. The schema checks shapes; [`crate::Flow::validate`] also checks
//! what a schema cannot: transitions and templates naming states, reachability.

use serde_json::{Map, Value, json};

use crate::flow::MAX_STATES;
use crate::states::{Kind, STATE_TYPES, StateType};
use crate::trigger::{MAX_TRIGGER_VALUES, MAX_TRIGGERS};

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://switchboard.dev/schemas/bots/flow.schema.json";

/// The JSON Schema of a flow definition.
pub fn flow_schema() -> Value {
    let states: Vec<Value> = STATE_TYPES.iter().map(state_schema).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Switchboard bot flow definition",
        "type": "object",
        "additionalProperties": false,
        "required": ["initial_state", "states"],
        "properties": {
            "description": {"type": "string"},
            "initial_state": {"$ref": "#/$defs/name"},
            "triggers": {"type": "array", "maxItems": MAX_TRIGGERS, "items": {"$ref": "#/$defs/trigger"}},
            "when_busy": {"enum": ["refuse", "wait", "replace"]},
            "states": {"type": "array", "minItems": 1, "maxItems": MAX_STATES, "items": {"oneOf": states}}
        },
        "$defs": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "trigger": {
                "type": "object",
                "additionalProperties": false,
                "required": ["type"],
                "properties": {
                    "type": {"enum": ["new_conversation", "keyword", "payload", "referral", "tag_added", "field_changed"]},
                    "values": {"type": "array", "maxItems": MAX_TRIGGER_VALUES, "items": {"type": "string", "minLength": 1}},
                    "match": {"enum": ["exact", "contains", "regex"]},
                    "priority": {"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX},
                    "channel_accounts": {"type": "array", "items": {"type": "string"}}
                }
            },
            "transition": {
                "type": "object",
                "additionalProperties": false,
                "required": ["event"],
                "properties": {"event": {"type": "string"}, "next": {"type": "string"}}
            }
        }
    })
}

fn state_schema(state_type: &StateType) -> Value {
    let mut properties = Map::new();
    for property in state_type.properties {
        properties.insert(property.name.to_owned(), kind_schema(property.kind));
    }
    let required: Vec<&str> = state_type
        .properties
        .iter()
        .filter(|property| property.required)
        .map(|property| property.name)
        .collect();
    let mut properties_schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required,
    });
    if !state_type.any_of.is_empty() {
        let any_of: Vec<Value> = state_type
            .any_of
            .iter()
            .map(|name| json!({"required": [name]}))
            .collect();
        properties_schema["anyOf"] = Value::Array(any_of);
    }
    let needs_properties =
        !state_type.any_of.is_empty() || state_type.properties.iter().any(|property| property.required);
    let required: &[&str] = if needs_properties {
        &["name", "type", "properties"]
    } else {
        &["name", "type"]
    };
    json!({
        "description": state_type.description,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": {
            "name": {"$ref": "#/$defs/name"},
            "type": {"const": state_type.name},
            "properties": properties_schema,
            "transitions": {
                "type": "array",
                "items": {
                    "allOf": [
                        {"$ref": "#/$defs/transition"},
                        {"properties": {"event": {"enum": state_type.events}}}
                    ]
                }
            }
        }
    })
}

fn kind_schema(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({"type": "string", "description": "text in the template language"}),
        Kind::Texts => json!({"type": "array", "minItems": 1, "items": {"type": "string"}}),
        Kind::Plain => json!({"type": "string"}),
        Kind::Name => json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"}),
        Kind::Key => json!({"$ref": "#/$defs/name"}),
        Kind::Target => {
            json!({"type": "string", "pattern": "^(contact\\.fields|flow)\\.[A-Za-z0-9_-]{1,64}$"})
        }
        Kind::State => json!({"$ref": "#/$defs/name"}),
        Kind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::Duration => json!({"type": "string", "pattern": "^[0-9]+[smhd]$"}),
        Kind::TimeOfDay => json!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}),
        Kind::Choice(choices) => json!({"enum": choices}),
        Kind::TextMap => json!({"type": "object", "additionalProperties": {"type": "string"}}),
        Kind::Pointers => {
            json!({"type": "object", "additionalProperties": {"type": "string", "pattern": "^(/.*)?$"}})
        }
        Kind::Object => json!({"type": "object"}),
        Kind::Cases => json!({
            "type": "array",
            "minItems": 1,
            "maxItems": crate::flow::MAX_CASES,
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["when", "next"],
                "properties": {"when": {"type": "object"}, "next": {"$ref": "#/$defs/name"}}
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../schema/flow.schema.json");

    /// The file in the repo is the generated schema. To regenerate it after changing the
    /// state table: `SWITCHBOARD_WRITE_SCHEMA=1 cargo test -p switchboard-bots schema`.
    #[test]
    fn the_shipped_schema_is_the_generated_one() {
        let generated = format!(
            "{}\n",
            serde_json::to_string_pretty(&flow_schema()).expect("serializes")
        );
        if std::env::var_os("SWITCHBOARD_WRITE_SCHEMA").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/flow.schema.json");
            std::fs::write(path, &generated).expect("schema written");
            return;
        }
        assert!(
            SHIPPED == generated,
            "services/bots/schema/flow.schema.json is stale: regenerate it with \
             SWITCHBOARD_WRITE_SCHEMA=1 cargo test -p switchboard-bots schema"
        );
    }

    /// A flow using every state type, all reached from a first `split` whose cases lead to
    /// each: the shipped schema must accept what the validator does.
    fn every_state_type() -> Value {
        let mut states: Vec<Value> = STATE_TYPES
            .iter()
            .map(|state_type| {
                let mut properties = Map::new();
                for property in state_type.properties {
                    properties.insert(property.name.to_owned(), sample(property.kind));
                }
                let transitions: Vec<Value> = state_type
                    .events
                    .iter()
                    .map(|event| json!({"event": event, "next": "start"}))
                    .collect();
                json!({"name": state_type.name, "type": state_type.name, "properties": properties, "transitions": transitions})
            })
            .collect();
        let cases: Vec<Value> = STATE_TYPES
            .iter()
            .map(|state_type| json!({"when": {"value": "flow.answer", "equals": state_type.name}, "next": state_type.name}))
            .collect();
        states.insert(
            0,
            json!({"name": "start", "type": "split", "properties": {"cases": cases}, "transitions": [{"event": "no_match"}]}),
        );
        json!({
            "initial_state": "start",
            "triggers": [
                {"type": "new_conversation", "channel_accounts": ["chacc_demo"]},
                {"type": "keyword", "values": ["price", "^order \\d+$"], "match": "regex", "priority": 2}
            ],
            "when_busy": "replace",
            "states": states
        })
    }

    /// A valid value of `kind` (naming the first state where a state is asked for).
    fn sample(kind: Kind) -> Value {
        match kind {
            Kind::Text => json!("Hi {{ contact.first_name | default: \"there\" }}"),
            Kind::Texts => json!(["Yes", "No"]),
            Kind::Plain => json!("yyyy-MM-dd"),
            Kind::Name => json!("support"),
            Kind::Target => json!("flow.answer"),
            Kind::Key => json!("plan"),
            Kind::State => json!("start"),
            Kind::Integer { min, .. } => json!(min.max(1)),
            Kind::Boolean => json!(true),
            Kind::Duration => json!("5m"),
            Kind::TimeOfDay => json!("09:30"),
            Kind::Choice(choices) => json!(choices[0]),
            Kind::TextMap => json!({"name": "{{contact.first_name | default: \"\"}}"}),
            Kind::Pointers => json!({"order": "/data/id"}),
            Kind::Object => json!({"source": "bot"}),
            Kind::Cases => json!([{"when": {"value": "flow.answer", "equals": "yes"}, "next": "start"}]),
        }
    }

    #[test]
    fn the_schema_accepts_what_the_validator_accepts_and_refuses_bad_shapes() {
        let schema = flow_schema();
        let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
        let flow = every_state_type();
        let parsed: crate::Flow = serde_json::from_value(flow.clone()).expect("a flow");
        assert_eq!(parsed.validate(), Vec::new());
        let errors: Vec<String> = validator
            .iter_errors(&flow)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");

        let mut bad = flow.clone();
        bad["states"][2]["properties"]["answer_type"] = json!("emial");
        assert!(!validator.is_valid(&bad), "an unknown answer type");
        let mut bad = flow.clone();
        bad["states"][1]["transitions"][0]["event"] = json!("delivered");
        assert!(!validator.is_valid(&bad), "an event the type does not have");
        let mut bad = flow;
        bad["states"][1]["properties"]["colour"] = json!("red");
        assert!(!validator.is_valid(&bad), "a property the type does not take");
    }

    #[test]
    fn every_state_type_is_one_branch_with_its_events() {
        let schema = flow_schema();
        let branches = schema["properties"]["states"]["items"]["oneOf"]
            .as_array()
            .expect("branches");
        assert_eq!(branches.len(), STATE_TYPES.len());
        let ask = branches
            .iter()
            .find(|branch| branch["properties"]["type"]["const"] == "ask")
            .expect("ask");
        assert_eq!(
            ask["properties"]["transitions"]["items"]["allOf"][1]["properties"]["event"]["enum"],
            json!(["answered", "invalid", "no_reply"])
        );
        assert_eq!(
            ask["properties"]["properties"]["required"],
            json!(["text", "answer_type", "save_to"])
        );
    }
}
