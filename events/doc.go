// Package events is the versioned wire contract between Stagegate's parts and any
// external monitor: the payload types (interaction, finding, incident event), the
// NATS subjects and streams they travel on, their JSON Schemas (schema/*.json), and
// the asynchronous JetStream publisher the gateway hands interactions to.
//
// Data comes in as Go values from the gateway and the monitors and goes out as JSON
// on JetStream subjects, each message carrying Nats-Msg-Id (the payload's id, for
// de-duplication) and W3C trace context in its headers. The gateway and the monitors
// never import each other; they both speak this package.
package events
