// Package incidents holds the incident model and its store.
//
// Data comes in from the monitors runner: every interaction it read from JetStream
// (RecordInteraction, already redacted when the policy's redact_pii_in_storage
// obligation says so) and the findings its detectors reported on one interaction
// (OpenIncident, which merges them into exactly one incident per interaction,
// idempotently, so JetStream redelivery is harmless). Data goes out to the reviewer
// console and the deploy gates through Incidents, Incident and Interaction.
//
// The Store is an interface; OpenSQLite is the embedded implementation (a local
// SQLite file, WAL). All SQL lives in sql.go behind a small dialect layer, so a
// PostgreSQL store can reuse the same statements.
package incidents
