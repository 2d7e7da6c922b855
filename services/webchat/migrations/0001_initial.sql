-- Web chat visitors: one per anonymous browser (resumed by its session token) or per verified
-- user id of the host site. Each visitor has one conversation thread whose messages are
-- numbered by `seq` from 1 without gaps.
CREATE TABLE visitors (
    account_id        text NOT NULL,
    visitor_id        text NOT NULL,
    workspace_id      text NOT NULL,
    -- The host site's user id, set only after its HMAC was verified.
    user_id           text,
    name              text NOT NULL DEFAULT '',
    email             text NOT NULL DEFAULT '',
    phone             text NOT NULL DEFAULT '',
    -- Highest seq in the thread.
    last_seq          bigint NOT NULL DEFAULT 0,
    -- Watermarks: the visitor received / read agent messages up to; the agent read visitor
    -- messages up to.
    delivered_seq     bigint NOT NULL DEFAULT 0,
    visitor_read_seq  bigint NOT NULL DEFAULT 0,
    agent_read_seq    bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, visitor_id)
);
CREATE UNIQUE INDEX visitors_user ON visitors (account_id, user_id) WHERE user_id IS NOT NULL;

-- Both sides of every thread. Visitor messages are deduplicated by the client's id, outbound
-- ones by delivery's message id.
CREATE TABLE messages (
    account_id    text NOT NULL,
    visitor_id    text NOT NULL,
    seq           bigint NOT NULL,
    id            text NOT NULL UNIQUE,
    author        text NOT NULL,
    author_name   text NOT NULL DEFAULT '',
    client_id     text,
    outbound_id   text,
    body          text NOT NULL DEFAULT '',
    attachments   jsonb NOT NULL DEFAULT '[]',
    buttons       jsonb NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, visitor_id, seq),
    FOREIGN KEY (account_id, visitor_id) REFERENCES visitors (account_id, visitor_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_client ON messages (account_id, visitor_id, client_id) WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_outbound ON messages (account_id, outbound_id) WHERE outbound_id IS NOT NULL;

-- Files visitors uploaded (at most `webchat.max_attachment_bytes` each), served by their
-- unguessable id.
CREATE TABLE attachments (
    id          text PRIMARY KEY,
    account_id  text NOT NULL,
    visitor_id  text NOT NULL,
    mime_type   text NOT NULL,
    filename    text NOT NULL,
    size_bytes  bigint NOT NULL,
    sha256      text NOT NULL,
    content     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, visitor_id) REFERENCES visitors (account_id, visitor_id) ON DELETE CASCADE
);

-- The transactional outbox (see switchboard-outbox): inbound events and receipts leave in
-- the transaction that stored them.
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
