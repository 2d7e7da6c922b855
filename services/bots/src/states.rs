//! Every state type a flow can use, in one table: the properties each takes (with their kind)
//! and the events that leave it. Validation and the published JSON Schema both read this table,
//! so they cannot disagree.

/// What a property's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text in the template language (`{{ … }}` allowed).
    Text,
    /// A list of texts in the template language (buttons, options).
    Texts,
    /// Plain text, not a template (a date pattern, a zone name).
    Plain,
    /// A name: letters, digits, `_`, `-` or `.` (a tag, a field key, a team id, a flow id).
    Name,
    /// A contact field's key: 1 to 64 of letters, digits, `_` or `-`.
    Key,
    /// Where an answer or a result is stored: `contact.fields.<key>` or `flow.<variable>`.
    Target,
    /// The name of a state of the same flow.
    State,
    /// A whole number between the bounds.
    Integer {
        /// Smallest value allowed.
        min: i64,
        /// Largest value allowed.
        max: i64,
    },
    /// `true` or `false`.
    Boolean,
    /// A duration: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `5m`, `2d`), at most 30 days.
    Duration,
    /// A time of day, `HH:MM` (24 h), in the workspace's zone.
    TimeOfDay,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// An object whose values are texts in the template language (variables, headers).
    TextMap,
    /// An object whose values are JSON pointers into a response (`/data/id`).
    Pointers,
    /// An object of any JSON (a template's parameters, an event's properties).
    Object,
    /// The cases of a `split`: a list of `{when, next}`, `next` naming a state.
    Cases,
}

/// One property of a state type.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    /// Its key in `properties`.
    pub name: &'static str,
    /// What its value must be.
    pub kind: Kind,
    /// Whether a state of this type must have it.
    pub required: bool,
}

/// One state type.
#[derive(Debug, Clone, Copy)]
pub struct StateType {
    /// Its `type` value.
    pub name: &'static str,
    /// What it does, for the schema's description.
    pub description: &'static str,
    /// The properties it takes; no other is allowed.
    pub properties: &'static [Property],
    /// At least one of these properties must be present (empty: no such rule).
    pub any_of: &'static [&'static str],
    /// The events its transitions may name.
    pub events: &'static [&'static str],
}

const fn required(name: &'static str, kind: Kind) -> Property {
    Property {
        name,
        kind,
        required: true,
    }
}

const fn optional(name: &'static str, kind: Kind) -> Property {
    Property {
        name,
        kind,
        required: false,
    }
}

/// Events of a step that either works or fails (most actions on a contact or conversation).
const DONE_OR_FAILED: &[&str] = &["done", "failed"];

/// The answer types of `ask`.
pub const ANSWER_TYPES: &[&str] = &["text", "number", "email", "phone", "date", "time", "choice"];
/// The methods `http_request` may use.
pub const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Every state type, in the order the schema lists them.
pub const STATE_TYPES: &[StateType] = &[
    // Messages.
    StateType {
        name: "send_message",
        description: "Sends a message as the bot: text, media, buttons, or a WhatsApp template with parameters.",
        properties: &[
            optional("text", Kind::Text),
            optional("media_url", Kind::Text),
            optional("buttons", Kind::Texts),
            optional("template", Kind::Name),
            optional("template_language", Kind::Name),
            optional("template_parameters", Kind::Texts),
        ],
        any_of: &["text", "media_url", "template"],
        events: &["sent", "failed"],
    },
    StateType {
        name: "ask",
        description: "Asks a question and waits for the answer, validated by its type, retried up to max_attempts, saved to a contact field or a flow variable.",
        properties: &[
            required("text", Kind::Text),
            required("answer_type", Kind::Choice(ANSWER_TYPES)),
            required("save_to", Kind::Target),
            optional("options", Kind::Texts),
            optional("retry_message", Kind::Text),
            optional("max_attempts", Kind::Integer { min: 1, max: 10 }),
            optional("timeout", Kind::Duration),
            optional("skip_if_known", Kind::Boolean),
        ],
        any_of: &[],
        events: &["answered", "invalid", "no_reply"],
    },
    // Logic.
    StateType {
        name: "split",
        description: "Takes the next state of the first case whose condition holds, else the no_match transition.",
        properties: &[required("cases", Kind::Cases)],
        any_of: &[],
        events: &["no_match"],
    },
    StateType {
        name: "set_variables",
        description: "Sets flow variables from templates.",
        properties: &[required("variables", Kind::TextMap)],
        any_of: &[],
        events: &["next"],
    },
    StateType {
        name: "wait",
        description: "Waits for a duration, or until a time of day in the workspace's zone (a durable timer).",
        properties: &[
            optional("duration", Kind::Duration),
            optional("until", Kind::TimeOfDay),
        ],
        any_of: &["duration", "until"],
        events: &["done"],
    },
    StateType {
        name: "jump",
        description: "Goes to another state of the flow.",
        properties: &[required("to", Kind::State)],
        any_of: &[],
        events: &[],
    },
    StateType {
        name: "start_flow",
        description: "Starts another flow; with return, this one continues when it ends.",
        properties: &[
            required("flow", Kind::Name),
            optional("return", Kind::Boolean),
            optional("variables", Kind::TextMap),
        ],
        any_of: &[],
        events: &["returned", "failed"],
    },
    StateType {
        name: "end",
        description: "Ends the execution.",
        properties: &[],
        any_of: &[],
        events: &[],
    },
    // Conversation actions.
    StateType {
        name: "transfer_to_human",
        description: "Hands the conversation to people (routing's TransferToHuman); the bot stops at once.",
        properties: &[optional("team", Kind::Name), optional("note", Kind::Text)],
        any_of: &[],
        events: &[],
    },
    StateType {
        name: "transfer_to_bot",
        description: "Hands the conversation back to the bot.",
        properties: &[],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "assign",
        description: "Assigns the conversation to an agent or a team.",
        properties: &[optional("agent", Kind::Name), optional("team", Kind::Name)],
        any_of: &["agent", "team"],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "unassign",
        description: "Takes the conversation from its assignee.",
        properties: &[],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "follow_up",
        description: "Turns the conversation's follow-up flag on or off.",
        properties: &[required("on", Kind::Boolean)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "archive",
        description: "Archives (or with archived: false, unarchives) the conversation.",
        properties: &[optional("archived", Kind::Boolean)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "close",
        description: "Closes the conversation, with a closing note.",
        properties: &[optional("note", Kind::Text)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "add_note",
        description: "Adds an internal note to the conversation.",
        properties: &[required("text", Kind::Text)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    // Contact actions.
    StateType {
        name: "add_tag",
        description: "Adds a tag to the contact.",
        properties: &[required("tag", Kind::Name)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "remove_tag",
        description: "Removes a tag from the contact.",
        properties: &[required("tag", Kind::Name)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "set_field",
        description: "Sets a custom field of the contact (validated by the field's type).",
        properties: &[required("field", Kind::Key), required("value", Kind::Text)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "clear_field",
        description: "Clears a custom field of the contact.",
        properties: &[required("field", Kind::Key)],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "block",
        description: "Blocks the contact.",
        properties: &[],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "consent",
        description: "Records the contact's e-mail verification, opt-in or opt-out, or bot subscription.",
        properties: &[required(
            "change",
            Kind::Choice(&[
                "email_verified",
                "email_opt_in",
                "email_opt_out",
                "bot_subscribe",
                "bot_unsubscribe",
            ]),
        )],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "erase_contact",
        description: "Erases the contact's data.",
        properties: &[],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "sequence",
        description: "Subscribes the contact to a sequence, or unsubscribes it.",
        properties: &[
            required("sequence", Kind::Name),
            required("action", Kind::Choice(&["subscribe", "unsubscribe"])),
        ],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "refresh_profile",
        description: "Refreshes the contact's name, avatar and username from the channel.",
        properties: &[],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    // Integration.
    StateType {
        name: "http_request",
        description: "Calls an HTTP endpoint (at most 10 s, outbound address rules apply); maps the JSON response into variables or fields.",
        properties: &[
            required("method", Kind::Choice(HTTP_METHODS)),
            required("url", Kind::Text),
            optional("headers", Kind::TextMap),
            optional("body", Kind::Text),
            optional("timeout", Kind::Duration),
            optional("save", Kind::Pointers),
        ],
        any_of: &[],
        events: &["success", "failed", "timeout"],
    },
    StateType {
        name: "log_event",
        description: "Stores a named custom event with properties and publishes it on the bus.",
        properties: &[required("name", Kind::Name), optional("properties", Kind::Object)],
        any_of: &[],
        events: &["done"],
    },
    StateType {
        name: "notify_admins",
        description: "Raises a notification every agent desk can show, with the conversation and a message.",
        properties: &[required("text", Kind::Text)],
        any_of: &[],
        events: &["done"],
    },
    StateType {
        name: "ai_reply",
        description: "Answers free text with the workspace's chat-completions endpoint; escalates when the model asks for a human, on low confidence, error or timeout.",
        properties: &[
            optional("instructions", Kind::Text),
            optional("max_tokens", Kind::Integer { min: 1, max: 4_096 }),
            optional("timeout", Kind::Duration),
        ],
        any_of: &[],
        events: &["answered", "escalate"],
    },
    // Tools.
    StateType {
        name: "format_datetime",
        description: "Formats a date and time with a pattern, in a zone and the contact's locale.",
        properties: &[
            required("value", Kind::Text),
            required("pattern", Kind::Plain),
            optional("zone", Kind::Plain),
            required("save_to", Kind::Target),
        ],
        any_of: &[],
        events: DONE_OR_FAILED,
    },
    StateType {
        name: "random",
        description: "Draws a number in a range, or a text of a length from an alphabet (codes, ticket numbers).",
        properties: &[
            optional(
                "min",
                Kind::Integer {
                    min: i64::MIN,
                    max: i64::MAX,
                },
            ),
            optional(
                "max",
                Kind::Integer {
                    min: i64::MIN,
                    max: i64::MAX,
                },
            ),
            optional("length", Kind::Integer { min: 1, max: 256 }),
            optional("alphabet", Kind::Plain),
            required("save_to", Kind::Target),
        ],
        any_of: &["max", "length"],
        events: &["done"],
    },
    StateType {
        name: "count_characters",
        description: "Counts the characters of a text (so a split can check an 8-digit code).",
        properties: &[required("value", Kind::Text), required("save_to", Kind::Target)],
        any_of: &[],
        events: &["done"],
    },
    StateType {
        name: "cancel_pending_input",
        description: "Makes sure the customer's next message is not taken as the answer to an earlier question.",
        properties: &[],
        any_of: &[],
        events: &["done"],
    },
];

/// The state type named `name`.
pub fn state_type(name: &str) -> Option<&'static StateType> {
    STATE_TYPES.iter().find(|state_type| state_type.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        for (index, state_type) in STATE_TYPES.iter().enumerate() {
            assert!(
                STATE_TYPES[..index]
                    .iter()
                    .all(|earlier| earlier.name != state_type.name),
                "{} listed twice",
                state_type.name
            );
            for wanted in state_type.any_of {
                assert!(
                    state_type
                        .properties
                        .iter()
                        .any(|property| property.name == *wanted),
                    "{}: any_of names {wanted}, which it does not take",
                    state_type.name
                );
            }
        }
    }
}
