-- The outbox stays near empty (rows are deleted once relayed), so autovacuum's default
-- trigger, a fifth of the live rows, never fires under steady load and dead rows pile up;
-- the relay's ORDER BY seq LIMIT then steps over their index entries. Vacuum after a fixed
-- number of dead rows instead.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);
