// Package chaos is the fault run behind `make chaos`: a real Stagegate gateway
// process (`stagegate up`, fail-open trial, nats.url) and monitor process
// (`stagegate monitor`) against a NATS JetStream server and a candidate model
// that the test controls, under a steady load of about 200 requests per second
// from a test client. Data comes in as the client's answers (interaction ids),
// the INTERACTIONS and FINDINGS streams read back by Nats-Msg-Id, the monitor's
// incident store and the gateway's metrics; it goes out as CHAOS.md, the report
// with exact counts (sent, answered, recorded, incidents expected vs found, lost).
//
// The faults, in order: NATS down for 30 s; the monitor process SIGKILLed and
// restarted; NATS down again and the gateway process SIGKILLed with a spool on
// disk, then restarted (the spool is replayed); the candidate answering 500s,
// hanging, and cutting its streams (the circuit breaker opens, traffic falls
// back to the baseline). Everything listens on loopback only, and the run is
// bounded to about five minutes.
//
// The tests are behind the build tag "chaos", so `make test` never runs them:
//
//	make chaos   # go test -tags chaos -run TestChaos ./sandbox/chaos
package chaos
