-- 2: review transitions (who changed an incident's status, severity or
-- category, when and why), and indexes for the rollout evidence queries.

CREATE TABLE IF NOT EXISTS incident_transitions (
    incident_id   TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    from_status   TEXT NOT NULL,
    to_status     TEXT NOT NULL,
    from_severity TEXT NOT NULL,
    to_severity   TEXT NOT NULL,
    from_category TEXT NOT NULL,
    to_category   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE INDEX IF NOT EXISTS incident_transitions_at ON incident_transitions (at);

CREATE INDEX IF NOT EXISTS incidents_trial_model_status ON incidents (trial, model, status, created_at);

CREATE INDEX IF NOT EXISTS interactions_trial_model_started ON interactions (trial, model, started_at);
