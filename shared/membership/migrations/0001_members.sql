-- One row per live replica of a component; a replica renews its lease every heartbeat and
-- rows whose lease lapsed are deleted by the next member that beats.
CREATE TABLE members (
    component  text NOT NULL,
    member_id  text NOT NULL,
    joined_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (component, member_id)
);
