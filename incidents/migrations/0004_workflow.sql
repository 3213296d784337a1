-- 4: the reviewer workflow, users and the audit log.
--   trial_rules: per-trial review rules (deadlines, second-review share,
--     retention) as JSON, set by a regulator;
--   incident_workflow: per incident, who holds it, when it was decided, its
--     Art. 73 harm class and the deadlines computed from the trial's rules
--     (basis_* say from which severity and status, so a change made elsewhere
--     is noticed and the deadlines recomputed);
--   incident_reviews: the first and the sampled second independent verdict,
--     for inter-rater agreement; incident_comments and incident_labels;
--   incident_transitions gains kind (claim, confirm, escalate, ...) and
--     assignee; rows written by Review have an empty kind;
--   users, user_trials (the trials a user may see), sessions (by the SHA-256
--     of the session token);
--   audit_log: the hash-chained audit trail; audit_head holds the newest
--     entry's sequence and hash (one row, locked by every append) and the
--     anchor left by pruning; legal_holds stops pruning per trial ("*": all).

CREATE TABLE IF NOT EXISTS trial_rules (
    trial      TEXT PRIMARY KEY,
    rules      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS incident_workflow (
    incident_id    TEXT PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    trial          TEXT NOT NULL,
    assignee       TEXT NOT NULL DEFAULT '',
    claimed_at     BIGINT NOT NULL DEFAULT 0,
    decided_at     BIGINT NOT NULL DEFAULT 0,
    decided_by     TEXT NOT NULL DEFAULT '',
    harm           TEXT NOT NULL DEFAULT '',
    reported_at    BIGINT NOT NULL DEFAULT 0,
    reported_by    TEXT NOT NULL DEFAULT '',
    second_review  TEXT NOT NULL DEFAULT '',
    basis_severity TEXT NOT NULL DEFAULT '',
    basis_status   TEXT NOT NULL DEFAULT '',
    review_due_at  BIGINT NOT NULL DEFAULT 0,
    report_due_at  BIGINT NOT NULL DEFAULT 0,
    next_due_at    BIGINT NOT NULL DEFAULT 0,
    next_start_at  BIGINT NOT NULL DEFAULT 0,
    next_warn50_at BIGINT NOT NULL DEFAULT 0,
    next_warn80_at BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS incident_workflow_trial_due ON incident_workflow (trial, next_due_at);

CREATE INDEX IF NOT EXISTS incident_workflow_assignee ON incident_workflow (assignee);

CREATE TABLE IF NOT EXISTS incident_reviews (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    round       INTEGER NOT NULL,
    reviewer    TEXT NOT NULL,
    status      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    category    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (incident_id, round)
);

CREATE TABLE IF NOT EXISTS incident_comments (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    author      TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE IF NOT EXISTS incident_labels (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (incident_id, label)
);

ALTER TABLE incident_transitions ADD COLUMN kind TEXT NOT NULL DEFAULT '';

ALTER TABLE incident_transitions ADD COLUMN assignee TEXT NOT NULL DEFAULT '';

CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    org           TEXT NOT NULL,
    display       TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS user_trials (
    name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    trial TEXT NOT NULL,
    PRIMARY KEY (name, trial)
);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,
    name       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    via        TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at);

CREATE TABLE IF NOT EXISTS audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    trial     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_log_trial ON audit_log (trial, seq);

CREATE TABLE IF NOT EXISTS audit_head (
    id          INTEGER PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    pruned_seq  BIGINT NOT NULL,
    pruned_hash TEXT NOT NULL
);

INSERT INTO audit_head (id, seq, hash, pruned_seq, pruned_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS legal_holds (
    trial  TEXT PRIMARY KEY,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
