-- 7: policy experiments: one row per experiment with its definition and
-- lifecycle, and its transitions. A partial unique index keeps at most one
-- running experiment per trial.

CREATE TABLE IF NOT EXISTS experiments (
    name         TEXT PRIMARY KEY,
    trial        TEXT NOT NULL,
    status       TEXT NOT NULL,
    revision     BIGINT NOT NULL,
    digest       TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    started_by   TEXT NOT NULL,
    stopped_at   BIGINT NOT NULL,
    stopped_by   TEXT NOT NULL,
    stop_cause   TEXT NOT NULL,
    stop_reason  TEXT NOT NULL,
    concluded_at BIGINT NOT NULL,
    concluded_by TEXT NOT NULL,
    conclusion   TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS experiments_trial ON experiments (trial, status);

CREATE UNIQUE INDEX IF NOT EXISTS experiments_one_running ON experiments (trial) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS experiment_transitions (
    name        TEXT NOT NULL REFERENCES experiments (name) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    cause       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (name, seq)
);
