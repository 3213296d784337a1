// Package monitors turns interactions into findings and incidents.
//
// Data comes in from JetStream: a Runner reads the INTERACTIONS stream
// (stagegate.interactions.>) through a durable pull consumer with explicit acks and
// hands every interaction to each Detector (one package per detector, e.g.
// monitors/pii). Data goes out three ways: the interaction (redacted when the
// policy obliged it) and one incident per flagged interaction into the
// incidents.Store; every finding to stagegate.findings.<trial>.<detector>; and an
// "opened" event to stagegate.incidents.<trial> when an incident is created. Every
// step is idempotent (deterministic ids, Nats-Msg-Id de-duplication, ON CONFLICT
// DO NOTHING), so a message is acked only after all of them succeeded and any
// failure is simply redelivered.
package monitors
