-- Outbound messages, their status history and provider attempts, receipts waiting for their
-- message, and the outbox.

CREATE TABLE messages (
    id                            text PRIMARY KEY,
    workspace_id                  text NOT NULL,
    channel_account_id            text NOT NULL,
    channel                       text NOT NULL,
    contact_id                    text NOT NULL,
    conversation_id               text NOT NULL DEFAULT '',
    -- The channel user id the provider addresses (wa_id, PSID, chat id, E.164, address).
    recipient                     text NOT NULL,
    author_kind                   text NOT NULL,
    author_id                     text NOT NULL DEFAULT '',
    -- switchboard.delivery.v1.OutboundContent, protobuf.
    content                       bytea NOT NULL,
    reply_to_provider_message_id  text NOT NULL DEFAULT '',
    human_agent_tag               boolean NOT NULL DEFAULT false,
    -- 0 live replies, 1 broadcasts: live goes first on the account's lane.
    priority                      smallint NOT NULL DEFAULT 0,
    status                        text NOT NULL DEFAULT 'queued',
    provider_message_id           text,
    error_code                    text NOT NULL DEFAULT '',
    error_title                   text NOT NULL DEFAULT '',
    error_message                 text NOT NULL DEFAULT '',
    error_details                 text NOT NULL DEFAULT '',
    -- Provider attempts claimed so far; a send job names the attempt it is for.
    attempts                      integer NOT NULL DEFAULT 0,
    -- Set while a retry waits.
    next_attempt_at               timestamptz,
    outcome_unknown               boolean NOT NULL DEFAULT false,
    idempotency_key               text,
    payload_hash                  bytea,
    resend_of                     text,
    created_at                    timestamptz NOT NULL DEFAULT now(),
    sent_at                       timestamptz,
    deleted_at                    timestamptz,
    updated_at                    timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX messages_idempotency ON messages (workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX messages_provider_id ON messages (channel_account_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- Sends claimed but never recorded (a process died mid-call) are found by age.
CREATE INDEX messages_sending ON messages (updated_at) WHERE status = 'sending';
-- Queued messages whose job went missing are found by age.
CREATE INDEX messages_queued ON messages (updated_at) WHERE status = 'queued' AND next_attempt_at IS NULL;
-- Messenger watermarks raise every earlier message to the recipient.
CREATE INDEX messages_recipient_sent ON messages (channel_account_id, recipient, sent_at)
    WHERE sent_at IS NOT NULL;

CREATE TABLE status_history (
    id               bigserial PRIMARY KEY,
    message_id       text NOT NULL,
    status           text NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    source           text NOT NULL,
    provider_status  text NOT NULL DEFAULT ''
);
CREATE INDEX status_history_message ON status_history (message_id, id);

CREATE TABLE attempts (
    message_id       text NOT NULL,
    number           integer NOT NULL,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    outcome          text NOT NULL,
    provider_status  integer NOT NULL DEFAULT 0,
    error_code       text NOT NULL DEFAULT '',
    error_title      text NOT NULL DEFAULT '',
    error_message    text NOT NULL DEFAULT '',
    error_details    text NOT NULL DEFAULT '',
    retry_after_ms   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, number)
);

-- Receipts for provider ids no message carries yet (the receipt beat the send's response,
-- or the id is not ours); applied when a send records the id, expired after a while.
CREATE TABLE parked_receipts (
    id                   bigserial PRIMARY KEY,
    channel_account_id   text NOT NULL,
    provider_message_id  text NOT NULL,
    status               text NOT NULL,
    provider_status      text NOT NULL DEFAULT '',
    error_code           text NOT NULL DEFAULT '',
    error_title          text NOT NULL DEFAULT '',
    error_message        text NOT NULL DEFAULT '',
    error_details        text NOT NULL DEFAULT '',
    parked_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_receipts_key ON parked_receipts (channel_account_id, provider_message_id);
CREATE INDEX parked_receipts_age ON parked_receipts (parked_at);

-- The transactional outbox (send jobs, outbound.message / outbound.status), relayed in order
-- by switchboard-outbox.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    event_id     text NOT NULL,
    routing_key  text NOT NULL,
    event_type   text NOT NULL,
    payload      bytea NOT NULL,
    traceparent  text NOT NULL DEFAULT '',
    tracestate   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    mandatory    boolean NOT NULL DEFAULT true
);
