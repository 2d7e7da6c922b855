-- The spool becomes an instance of the shared transactional outbox (switchboard-outbox): the
-- same columns, written and relayed by the same code, so the two cannot drift. The relay now
-- deletes exactly the rows the broker confirmed.
ALTER TABLE spool RENAME COLUMN spooled_at TO created_at;
ALTER TABLE spool ADD COLUMN mandatory boolean NOT NULL DEFAULT true;
-- The channel is read from the event type now. The column stays (with a default) while
-- replicas of the previous version may still write it during a rolling upgrade.
ALTER TABLE spool ALTER COLUMN channel SET DEFAULT '';
-- Like every outbox: near empty, so vacuum after a fixed number of dead rows.
ALTER TABLE spool SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);
