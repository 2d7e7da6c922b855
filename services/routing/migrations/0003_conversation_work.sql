-- Working a conversation: archive and follow-up, bot or human control, the contact snapshot
-- used for search and snippets, reactions / edits / deletes, notes and snippets.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

ALTER TABLE conversations
    ADD COLUMN archived_at        timestamptz,
    ADD COLUMN follow_up          boolean NOT NULL DEFAULT false,
    -- bot | human
    ADD COLUMN controller         text NOT NULL DEFAULT 'human',
    -- Bumped by every hand-over: bot sends decided under an older version are refused.
    ADD COLUMN controller_version bigint NOT NULL DEFAULT 1,
    -- While in the future, free text does not reach the bot (an agent replied).
    ADD COLUMN bot_paused_until   timestamptz,
    -- The contact as contacts last described it (search, snippet variables).
    ADD COLUMN contact_snapshot   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN search_text        text NOT NULL DEFAULT '';
CREATE INDEX conversations_search ON conversations USING gin (search_text public.gin_trgm_ops);

ALTER TABLE workspace_settings
    ADD COLUMN bot_enabled       boolean NOT NULL DEFAULT false,
    ADD COLUMN bot_pause_minutes integer NOT NULL DEFAULT 60,
    -- {"time_zone": "…", "intervals": [{"weekday": 1, "opens": "09:00", "closes": "17:00"}]};
    -- NULL: always open.
    ADD COLUMN business_hours      jsonb,
    ADD COLUMN away_message        text NOT NULL DEFAULT '',
    ADD COLUMN at_capacity_message text NOT NULL DEFAULT '';

-- Automatic replies requested, one per conversation, kind and period (a closed period's start,
-- or a wait's start in a team queue).
CREATE TABLE auto_replies (
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    period          text NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, kind, period)
);

-- Outbound messages get their provider id later (NULLs never collide in the unique key).
ALTER TABLE messages
    ALTER COLUMN provider_message_id DROP NOT NULL,
    -- Outbound: queued | sending | sent | delivered | read | failed.
    ADD COLUMN status     text,
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN author_id  text,
    ADD COLUMN reply_to_message_id text,
    -- [{"emoji": "…", "at": "…"}]: the customer's current reactions.
    ADD COLUMN reactions  jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN edited_at  timestamptz,
    ADD COLUMN deleted_at timestamptz;

-- A message's earlier versions (before an edit or a delete), oldest first.
CREATE TABLE message_revisions (
    message_id  text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    -- The InboundMessage (protobuf) as it was.
    body        bytea NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, revision)
);

-- Internal notes and comments: never sent to a provider.
CREATE TABLE notes (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- note | comment
    kind            text NOT NULL,
    author_id       text NOT NULL,
    body            text NOT NULL,
    mentions        text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    edited_at       timestamptz
);
CREATE INDEX notes_conversation ON notes (conversation_id, created_at, id);

-- Canned responses with {{variables}}.
CREATE TABLE snippets (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL,
    shortcut     text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, shortcut)
);
