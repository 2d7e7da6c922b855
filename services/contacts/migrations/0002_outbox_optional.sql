-- Outbox rows whose subscribers are optional are published without the mandatory flag (see
-- switchboard-outbox); contacts' events are all mandatory.
ALTER TABLE outbox ADD COLUMN mandatory boolean NOT NULL DEFAULT true;
