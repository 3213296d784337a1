// Package monitors turns interactions into findings and incidents.
//
// Data comes in from JetStream: a Runner reads the INTERACTIONS stream
// (stagegate.interactions.>) through a durable pull consumer with explicit
// acks and hands every interaction to each Detector (one package per
// detector: pii, injection, jailbreak, toxicity, unsafe, slo, judge;
// monitors/suite builds the default set), with Config.Workers handlers per
// process and any number of processes sharing the durable consumer.
//
// Data goes out three ways: the interaction (redacted when the policy obliged
// it) and one incident per flagged interaction into the incidents.Store (with
// Config.Burst, repeated findings of one category from one model or user in a
// window join one aggregate incident instead); every finding to
// stagegate.findings.<trial>.<detector>; and an "opened" event to
// stagegate.incidents.<trial> when an incident is created. An Ingester reads
// the findings that external monitors publish on the same subjects (the
// contract is in README.md) and merges them into incidents too.
//
// Every step is idempotent (deterministic ids, Nats-Msg-Id de-duplication, ON
// CONFLICT DO NOTHING), so a message is acked only after all of them succeeded
// and any failure is simply redelivered.
package monitors
