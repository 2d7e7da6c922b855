-- The spool: verified events the broker could not confirm, drained to the bus in `seq` order.
CREATE TABLE spool (
    seq          bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    channel      text NOT NULL,
    routing_key  text NOT NULL,
    event_type   text NOT NULL,
    payload      bytea NOT NULL,
    -- W3C trace context of the webhook request, so the relayed publish continues its trace.
    traceparent  text NOT NULL DEFAULT '',
    tracestate   text NOT NULL DEFAULT '',
    spooled_at   timestamptz NOT NULL DEFAULT now()
);

-- Validly signed webhooks that could not be understood: kept whole for operators.
CREATE TABLE dead_letters (
    id                 bigserial PRIMARY KEY,
    channel            text NOT NULL,
    channel_account_id text NOT NULL,
    workspace_id       text NOT NULL,
    reason             text NOT NULL,
    content_type       text NOT NULL DEFAULT '',
    body               bytea NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);
