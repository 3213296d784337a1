// Package slo is the service-level detector of the risk monitors.
//
// Data comes in as the stream of interactions the monitors runner reads: each
// one adds a sample — total latency, time to first token (streams), whether
// the client got an error or a broken stream, whether the answer came from the
// baseline after the candidate failed — to the series of its trial, model and
// stage. Each series keeps a sliding window (Config.Window) as a ring of time
// slices with log-scale latency histograms, so memory is bounded and a check
// costs the same whatever the traffic. When a window holds enough samples and
// a measure breaks the trial's limit (p95 latency, p95 time to first token,
// error rate, fallback rate), data goes out as an events.Finding of category
// "slo" on the interaction that tipped it over; the same breach is reported
// again only after Config.Cooldown.
//
// Several runner processes each see part of the traffic (they share a durable
// consumer); their windows are samples of the whole, good enough for rates and
// percentiles at the volumes where an SLO matters.
package slo
