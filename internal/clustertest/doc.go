// Package clustertest holds the scale-out test run by `make cluster-test` (build
// tag "cluster", so `go test ./...` skips it): a three-node NATS cluster and the
// Stagegate roles as separate processes on loopback ports, on PostgreSQL, under
// load while a NATS node, a monitor and the leading controller are killed.
//
// Data comes in from the binaries it builds (stagegate, stagegate-natsnode) and
// the PostgreSQL server named by STAGEGATE_TEST_POSTGRES (internal/pgtest); what
// goes out is the test's verdict and, on failure, each process's log tail.
package clustertest
