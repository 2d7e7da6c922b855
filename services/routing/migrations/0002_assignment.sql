-- Agents, teams and assignment.
CREATE TABLE agents (
    id               text PRIMARY KEY,
    workspace_id     text NOT NULL,
    name             text NOT NULL,
    email            text,
    -- online | away | offline
    status           text NOT NULL DEFAULT 'offline',
    max_open         integer NOT NULL DEFAULT 10,
    -- Open conversations assigned now; changed in the same transaction as each assignment.
    open_count       integer NOT NULL DEFAULT 0,
    -- Position in the global assignment order: round-robin picks the smallest.
    last_assigned_seq bigint,
    last_assigned_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, email)
);
CREATE INDEX agents_workspace ON agents (workspace_id, created_at, id);
CREATE SEQUENCE assignment_seq;

CREATE TABLE teams (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL,
    name         text NOT NULL,
    -- manual | round_robin | least_open
    mode         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
CREATE TABLE team_members (
    team_id  text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, agent_id)
);
CREATE INDEX team_members_agent ON team_members (agent_id);
-- New conversations on an account go to its team.
CREATE TABLE team_accounts (
    channel_account_id text PRIMARY KEY,
    team_id            text NOT NULL REFERENCES teams (id) ON DELETE CASCADE
);
CREATE INDEX team_accounts_team ON team_accounts (team_id);

ALTER TABLE conversations
    ADD COLUMN assignee_id text REFERENCES agents (id) ON DELETE SET NULL,
    ADD COLUMN team_id     text REFERENCES teams (id) ON DELETE SET NULL,
    ADD COLUMN assigned_at timestamptz,
    -- Set while waiting in the team's queue (first in, first out).
    ADD COLUMN queued_at   timestamptz;
CREATE INDEX conversations_queue ON conversations (team_id, queued_at, id)
    WHERE queued_at IS NOT NULL AND status = 'open';
CREATE INDEX conversations_assignee ON conversations (assignee_id) WHERE assignee_id IS NOT NULL;

CREATE TABLE workspace_settings (
    workspace_id         text PRIMARY KEY,
    unassign_on_close    boolean NOT NULL DEFAULT false,
    require_closing_note boolean NOT NULL DEFAULT false
);

-- assignment.changed events for other services (contacts keeps each contact's assignee), relayed
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
