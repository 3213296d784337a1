-- 3: trial revisions: each applied trial definition (the regulator's YAML),
-- numbered per trial, with who applied it and when.

CREATE TABLE IF NOT EXISTS trial_revisions (
    trial      TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    source     TEXT NOT NULL,
    PRIMARY KEY (trial, revision)
);
