-- Conversations: at most one open conversation per contact and channel account.
CREATE TABLE conversations (
    id                 text PRIMARY KEY,
    workspace_id       text NOT NULL,
    contact_id         text NOT NULL,
    channel_account_id text NOT NULL,
    channel            text NOT NULL,
    -- open | closed
    status             text NOT NULL DEFAULT 'open',
    opened_at          timestamptz NOT NULL,
    closed_at          timestamptz,
    closing_category   text NOT NULL DEFAULT '',
    closing_summary    text NOT NULL DEFAULT '',
    -- The last inbound message: the reply window runs from it.
    last_inbound_at    timestamptz,
    last_message_at    timestamptz,
    revision           bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX conversations_one_open ON conversations (contact_id, channel_account_id)
    WHERE status = 'open';
CREATE INDEX conversations_contact ON conversations (workspace_id, contact_id);
CREATE INDEX conversations_recent ON conversations (workspace_id, last_message_at DESC, id DESC);

-- Message history. (channel account, provider message id) is unique: provider retries, broker
-- redeliveries and replays are one message.
CREATE TABLE messages (
    id                           text PRIMARY KEY,
    workspace_id                 text NOT NULL,
    conversation_id              text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    contact_id                   text NOT NULL,
    channel_account_id           text NOT NULL,
    provider_message_id          text NOT NULL,
    -- inbound | outbound
    direction                    text NOT NULL,
    -- customer | agent | bot | workflow | broadcast | api
    author_kind                  text NOT NULL,
    -- The normalized InboundMessage (protobuf).
    body                         bytea NOT NULL,
    reply_to_provider_message_id text NOT NULL DEFAULT '',
    provider_timestamp           timestamptz,
    -- Stable tiebreak for equal provider timestamps: arrival order.
    arrival                      bigserial,
    received_at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_account_id, provider_message_id)
);
CREATE INDEX messages_history ON messages (conversation_id, provider_timestamp, arrival);
CREATE INDEX messages_contact ON messages (contact_id);

-- Every change, written in the transaction that makes it: the source of the resumable event
-- stream. Readers order a workspace's events by (tx, seq), where tx is the writing
-- transaction's id, and read only rows whose transaction is older than every transaction still
-- running in this database. Those rows can no longer change, and every row written
-- later sorts after them, so resuming after a cursor misses nothing and repeats nothing,
-- without serializing writers.
CREATE TABLE event_log (
    seq             bigserial PRIMARY KEY,
    tx              bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    workspace_id    text NOT NULL,
    conversation_id text,
    contact_id      text,
    event_type      text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX event_log_order ON event_log (workspace_id, tx, seq);
CREATE INDEX event_log_age ON event_log (created_at);
-- How far each workspace's log was pruned (retention): resuming before it is refused.
CREATE TABLE event_log_pruned (
    workspace_id text PRIMARY KEY,
    tx           bigint NOT NULL,
    seq          bigint NOT NULL
);
