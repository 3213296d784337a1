// Package incidents holds the incident model and its store.
//
// Data comes in from the monitors runner: every interaction it read from JetStream
// (RecordInteraction, already redacted when the policy's redact_pii_in_storage
// obligation says so) and the findings its detectors reported on one interaction
// (OpenIncident, which merges them into exactly one incident per interaction,
// idempotently, so JetStream redelivery is harmless). Data goes out to the reviewer
// console and the deploy gates through Incidents, Incident and Interaction.
//
// The Store is an interface; SQLStore implements it on two engines: OpenSQLite
// (embedded, a local SQLite file in WAL mode) and OpenPostgres (at scale, many
// processes on one PostgreSQL database through pgx's database/sql driver); Open
// picks one from a path or a postgres:// URL. The SQL is written once behind a
// small dialect layer (sql.go: placeholders, row locks, the migration lock).
// The schema is a sequence of SQL files embedded in the binary
// (migrations/NNNN_name.sql, pinned by testdata/migrations.sum so a released
// one cannot change); each store applies the missing ones on open, in one transaction (on PostgreSQL under an advisory lock, so
// processes starting together apply each once), and records them in
// schema_migrations.
package incidents
