// Package replay answers a regulator's what-if: how would a candidate policy
// revision have decided the trial's recorded traffic?
//
// Data comes in as recorded interactions (events.Interaction, read from the
// JetStream INTERACTIONS stream by ReadInteractions, from a live server or a
// snapshot of a stopped sandbox's data dir) whose decision carries the policy
// input the gateway evaluated (canonical JSON) and its hash. Each input is
// decided again by the candidate; data goes out as a Report: how many decisions
// would change, grouped (allowed→denied, denied→allowed, route, obligations,
// reasons) with example interaction ids, as a table or JSON. Replaying the
// revision that made the recorded decisions reproduces them exactly.
package replay
