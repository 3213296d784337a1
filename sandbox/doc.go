// Package sandbox wires Stagegate's parts into one process: it loads and validates
// the configuration (or seeds the demo trial), starts an embedded nats-server with
// JetStream on disk, the incident store, simulated models, the policy engines, the
// gateway, the monitor runner and the admin API, and stops them in reverse order.
// NewRole runs one part per process instead (gateway, monitor, controller,
// console; roles.go) against a shared NATS cluster and store, for scale-out.
//
// Trials come from the configuration and from definitions a regulator applies
// through the admin API: those are stored as numbered revisions and put into
// service on every gateway (trials_live.go).
//
// Configuration comes in from a YAML file and flags; requests come in on the gateway
// and admin listeners; everything the process records goes out to JetStream and the
// store under the data dir.
package sandbox
