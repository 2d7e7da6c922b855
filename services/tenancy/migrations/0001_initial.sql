-- Workspaces (tenants), their API keys, and their channel accounts.

CREATE TABLE workspaces (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    workspace_id  text REFERENCES workspaces (id),
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('platform_admin', 'workspace_admin', 'workspace_member')),
    -- SHA-256 (hex) of the key's 256-bit random secret; the secret itself is never stored.
    secret_sha256 text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((role = 'platform_admin') = (workspace_id IS NULL))
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

CREATE TABLE channel_accounts (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    channel      text NOT NULL,
    name         text NOT NULL,
    external_id  text NOT NULL,
    base_url     text NOT NULL DEFAULT '',
    enabled      boolean NOT NULL DEFAULT true,
    settings     jsonb NOT NULL DEFAULT '{}',
    -- Provider secrets by name. Write-only through the API.
    secrets      jsonb NOT NULL DEFAULT '{}',
    revision     bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- One provider account belongs to one workspace.
    UNIQUE (channel, external_id)
);
CREATE INDEX channel_accounts_workspace ON channel_accounts (workspace_id, id);
