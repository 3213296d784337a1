-- 1: interactions (the stored record of every answered request), incidents
-- (one per flagged interaction) and the findings that opened or updated them.

CREATE TABLE IF NOT EXISTS interactions (
        id          TEXT PRIMARY KEY,
        trial       TEXT NOT NULL,
        model       TEXT NOT NULL,
        status      TEXT NOT NULL,
        redacted    INTEGER NOT NULL,
        started_at  BIGINT NOT NULL,
        recorded_at BIGINT NOT NULL,
        payload     TEXT NOT NULL
    );

CREATE INDEX IF NOT EXISTS interactions_trial_started ON interactions (trial, started_at);

CREATE TABLE IF NOT EXISTS incidents (
        id             TEXT PRIMARY KEY,
        interaction_id TEXT NOT NULL UNIQUE,
        trial          TEXT NOT NULL,
        model          TEXT NOT NULL,
        category       TEXT NOT NULL,
        severity       TEXT NOT NULL,
        status         TEXT NOT NULL,
        title          TEXT NOT NULL,
        created_at     BIGINT NOT NULL,
        updated_at     BIGINT NOT NULL
    );

CREATE INDEX IF NOT EXISTS incidents_created ON incidents (created_at DESC, id DESC);

CREATE INDEX IF NOT EXISTS incidents_trial_created ON incidents (trial, created_at DESC);

CREATE INDEX IF NOT EXISTS incidents_status_created ON incidents (status, created_at DESC);

CREATE TABLE IF NOT EXISTS findings (
        id             TEXT PRIMARY KEY,
        incident_id    TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        interaction_id TEXT NOT NULL,
        detector       TEXT NOT NULL,
        category       TEXT NOT NULL,
        severity       TEXT NOT NULL,
        score          DOUBLE PRECISION NOT NULL,
        created_at     BIGINT NOT NULL,
        payload        TEXT NOT NULL
    );

CREATE INDEX IF NOT EXISTS findings_incident ON findings (incident_id, created_at);
