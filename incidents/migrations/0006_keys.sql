-- 6: pilot API keys: one row per key with its SHA-256 (hex, unique) and the
-- principal it stands for; revoked_at is 0 while the key is active. The key
-- itself is never stored.

CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    trial      TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    cohort     TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    revoked_by TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS api_keys_trial ON api_keys (trial, created_at);
