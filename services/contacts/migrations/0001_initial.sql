-- Trigram indexes make `contains` search fast over millions of contacts.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- Per-workspace behaviour of identity resolution.
CREATE TABLE settings (
    workspace_id             text PRIMARY KEY,
    -- ISO 3166-1 alpha-2 country for phone numbers written in national format ('' = none).
    default_country          text NOT NULL DEFAULT '',
    -- Link a new channel identity to an existing contact with the same phone / e-mail.
    link_by_phone            boolean NOT NULL DEFAULT false,
    link_by_email            boolean NOT NULL DEFAULT false,
    -- Month-end reset deletes the contacts carrying this tag ('' = no reset).
    quota_reset_tag          text NOT NULL DEFAULT '',
    -- The month whose contacts the reset last handled (first day, UTC).
    quota_reset_month        date,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Monthly contact quota per workspace and channel (no row = unlimited).
CREATE TABLE quotas (
    workspace_id  text NOT NULL,
    channel       text NOT NULL,
    monthly_limit bigint NOT NULL CHECK (monthly_limit >= 0),
    PRIMARY KEY (workspace_id, channel)
);

-- Which contacts were active on a channel in a calendar month (UTC): each counts once.
CREATE TABLE monthly_activity (
    workspace_id text NOT NULL,
    channel      text NOT NULL,
    month        date NOT NULL,
    contact_id   text NOT NULL,
    PRIMARY KEY (workspace_id, channel, month, contact_id)
);
-- Distinct active contacts per month, in shards (summed when read) so that concurrent
-- consumers do not all update one row.
CREATE TABLE monthly_usage (
    workspace_id text NOT NULL,
    channel      text NOT NULL,
    month        date NOT NULL,
    shard        smallint NOT NULL DEFAULT 0,
    contacts     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, channel, month, shard)
);

CREATE TABLE contacts (
    id                    text PRIMARY KEY,
    workspace_id          text NOT NULL,
    first_name            text NOT NULL DEFAULT '',
    last_name             text NOT NULL DEFAULT '',
    display_name          text NOT NULL DEFAULT '',
    email                 text,
    phone                 text,
    username              text,
    avatar_url            text,
    locale                text,
    -- Custom field key -> typed JSON value (see field_definitions).
    custom_fields         jsonb NOT NULL DEFAULT '{}',
    tags                  text[] NOT NULL DEFAULT '{}',
    -- Channels the contact has identities on.
    channels              text[] NOT NULL DEFAULT '{}',
    blocked               boolean NOT NULL DEFAULT false,
    blocked_at            timestamptz,
    bot_subscribed        boolean NOT NULL DEFAULT true,
    bot_subscription_at   timestamptz,
    bot_subscription_source text NOT NULL DEFAULT '',
    -- E-mail state: each with its time and source.
    email_verified_at     timestamptz,
    email_verified_source text NOT NULL DEFAULT '',
    email_opt_in_at       timestamptz,
    email_opt_in_source   text NOT NULL DEFAULT '',
    email_opt_out_at      timestamptz,
    email_opt_out_source  text NOT NULL DEFAULT '',
    -- SMS STOP / START.
    sms_opted_out         boolean NOT NULL DEFAULT false,
    sms_opt_change_at     timestamptz,
    -- Kept in sync from routing's assignment events.
    assignee_id           text,
    -- When that assignment happened (older assignment events are ignored).
    assignee_at           timestamptz,
    last_inbound_at       timestamptz,
    last_channel          text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    revision              bigint NOT NULL DEFAULT 1,
    -- Set while merged into another contact (hidden from lists until unmerged).
    merged_into           text REFERENCES contacts (id) ON DELETE SET NULL,
    -- What free-text search looks in (names, e-mail, phone, username), lower-cased.
    search_text           text GENERATED ALWAYS AS (
        lower(first_name || ' ' || last_name || ' ' || display_name || ' ' || coalesce(email, '')
              || ' ' || coalesce(phone, '') || ' ' || coalesce(username, ''))
    ) STORED
-- Room on each page for HOT updates: every inbound event updates last_inbound_at, which is
-- deliberately not indexed, so those updates touch no index.
) WITH (fillfactor = 80);
CREATE INDEX contacts_created ON contacts (workspace_id, created_at);
CREATE INDEX contacts_email ON contacts (workspace_id, email) WHERE email IS NOT NULL;
CREATE INDEX contacts_phone ON contacts (workspace_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX contacts_tags ON contacts USING gin (tags);
CREATE INDEX contacts_custom_fields ON contacts USING gin (custom_fields jsonb_path_ops);
CREATE INDEX contacts_search ON contacts USING gin (search_text public.gin_trgm_ops);
CREATE INDEX contacts_list ON contacts (workspace_id, created_at DESC, id DESC) WHERE merged_into IS NULL;

-- A sender on a channel account, mapped to exactly one contact.
CREATE TABLE identities (
    channel_account_id text NOT NULL,
    channel_user_id    text NOT NULL,
    workspace_id       text NOT NULL,
    channel            text NOT NULL,
    contact_id         text NOT NULL REFERENCES contacts (id) ON DELETE CASCADE
                       DEFERRABLE INITIALLY DEFERRED,
    -- What the channel told us about the sender (name, phone, e-mail, username, avatar).
    profile            jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz,
    PRIMARY KEY (channel_account_id, channel_user_id)
);
CREATE INDEX identities_contact ON identities (contact_id);

-- Inbound events already resolved: a redelivery or provider retry has no second effect.
-- Holds ids only (derived digests), no personal data; kept after an erasure so that old
-- webhooks retried later do not resurrect the erased contact.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    workspace_id text NOT NULL,
    contact_id   text,
    -- forwarded | blocked | quota_exceeded | erased
    outcome      text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_age ON processed_events (processed_at);

-- Events not passed on: blocked senders (no body kept) and new senders over the quota (the
-- envelope kept so they can be replayed once the quota allows).
CREATE TABLE held_events (
    event_id     text PRIMARY KEY,
    workspace_id text NOT NULL,
    channel      text NOT NULL,
    contact_id   text,
    reason       text NOT NULL,
    envelope     bytea,
    held_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_events_workspace ON held_events (workspace_id, held_at);

-- The same phone or e-mail seen on two contacts when no linking rule applies.
CREATE TABLE merge_suggestions (
    workspace_id text NOT NULL,
    contact_id   text NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    candidate_id text NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contact_id, candidate_id)
);
CREATE INDEX merge_suggestions_workspace ON merge_suggestions (workspace_id, created_at);

-- Typed custom fields of a workspace.
CREATE TABLE field_definitions (
    workspace_id text NOT NULL,
    key          text NOT NULL,
    label        text NOT NULL,
    -- text | number | date | datetime | boolean | single_select | multi_select | email | phone | url
    field_type   text NOT NULL,
    options      text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key)
);

-- Named filters.
CREATE TABLE saved_views (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL,
    name         text NOT NULL,
    filter       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);

-- Events of API changes, written in the changing transaction and published by the relay in
-- `seq` order (a change is never committed without its event, nor published without commit).
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    event_id     text NOT NULL,
    routing_key  text NOT NULL,
    event_type   text NOT NULL,
    payload      bytea NOT NULL,
    traceparent  text NOT NULL DEFAULT '',
    tracestate   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Merges, kept so they can be undone: the secondary row stays (hidden by merged_into); the
-- primary's writable fields before and right after the merge, and the identities moved.
CREATE TABLE merges (
    id             text PRIMARY KEY,
    workspace_id   text NOT NULL,
    primary_id     text NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    secondary_id   text NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    primary_before jsonb NOT NULL,
    primary_after  jsonb NOT NULL,
    -- [[channel_account_id, channel_user_id], …] moved from the secondary.
    identities     jsonb NOT NULL,
    merged_at      timestamptz NOT NULL DEFAULT now(),
    unmerged_at    timestamptz
);
CREATE INDEX merges_secondary ON merges (secondary_id) WHERE unmerged_at IS NULL;
CREATE INDEX merges_primary ON merges (primary_id);

-- Background jobs (bulk tags, imports), claimed by one replica at a time and resumable.
CREATE TABLE jobs (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL,
    kind         text NOT NULL,
    request_id   text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'pending',
    dry_run      boolean NOT NULL DEFAULT false,
    params       jsonb NOT NULL DEFAULT '{}',
    -- The CSV of an import, dropped when the job ends.
    input        bytea,
    total        bigint NOT NULL DEFAULT 0,
    processed    bigint NOT NULL DEFAULT 0,
    created      bigint NOT NULL DEFAULT 0,
    updated      bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    errors       jsonb NOT NULL DEFAULT '[]',
    error        text NOT NULL DEFAULT '',
    -- Where a resumed job continues (last contact id / row done).
    position     text NOT NULL DEFAULT '',
    heartbeat_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE UNIQUE INDEX jobs_request ON jobs (workspace_id, kind, request_id) WHERE request_id <> '';
CREATE INDEX jobs_pending ON jobs (created_at) WHERE status IN ('pending', 'running');
