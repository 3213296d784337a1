-- 5: the burst windows of Correlate and their member incidents.

CREATE TABLE IF NOT EXISTS burst_windows (
    burst_id     TEXT PRIMARY KEY,
    trial        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    category     TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        INTEGER NOT NULL,
    incident_id  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS burst_members (
    burst_id       TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    ordinal        INTEGER NOT NULL,
    PRIMARY KEY (burst_id, interaction_id)
);
