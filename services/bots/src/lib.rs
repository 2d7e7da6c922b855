//! The bot runtime (issue 18): flows that answer when no human does. This crate starts with
//! the model every other part stands on, pure and without I/O: the flow definition, its
//! validation (every fault, naming the state and property), the table of state types with the
//! JSON Schema made from it, and the template language of flow texts. The consumer of
//! `bots.bot.pNN`, executions with their journal, durable timers and the gRPC API come next.

pub mod answer;
pub mod condition;
pub mod engine;
pub mod flow;
pub mod schema;
pub mod states;
pub mod template;
pub mod trigger;

pub use flow::{Flow, Problem, State, Transition, WhenBusy};
pub use schema::flow_schema;
pub use template::{MissingValue, Template, TemplateError, Values};
