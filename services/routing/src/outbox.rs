//! Routing's transactional outbox: `assignment.changed`, routing events, bot turns and
//! automatic-reply requests are recorded in the transaction of the change and relayed to the bus.

/// Routing's outbox (assignment changes, routing events, bot turns, automatic-reply requests),
/// relayed by one replica at a time.
pub const OUTBOX: switchboard_outbox::Outbox =
    switchboard_outbox::Outbox::new("routing", 0x726f_7574_6f75_7462); // "routoutb"
