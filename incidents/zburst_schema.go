package incidents

// migrationBursts adds the burst windows of Correlate and their members. It is
// appended from init in this file, whose name sorts after every other file of
// the package that appends a migration (review.go, trials.go,
// workflow_schema.go), so it lands last (Go runs init functions in file name
// order). Keep it last; a new migration file must sort after this one.
var migrationBursts = []string{
	`CREATE TABLE IF NOT EXISTS burst_windows (
		burst_id     TEXT PRIMARY KEY,
		trial        TEXT NOT NULL,
		scope        TEXT NOT NULL,
		subject      TEXT NOT NULL,
		category     TEXT NOT NULL,
		window_start BIGINT NOT NULL,
		count        INTEGER NOT NULL,
		incident_id  TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS burst_members (
		burst_id       TEXT NOT NULL,
		interaction_id TEXT NOT NULL,
		ordinal        INTEGER NOT NULL,
		PRIMARY KEY (burst_id, interaction_id)
	)`,
}

func init() { migrations = append(migrations, migrationBursts) }
