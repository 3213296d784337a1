// Package experiment runs policy experiments: it compares variants of a trial's
// policy on real traffic and says, with honest statistics, whether a variant
// changed what users meet (confirmed incidents, denials, user reports,
// abandonment, retries, latency).
//
// Data comes in as an experiment definition (YAML, Parse: every problem with
// its line and field), as lifecycle commands from the admin API (Manager:
// apply, start, stop, conclude; every transition persisted and audited by the
// incident store), as the recorded interactions and incidents the store holds
// (the analysis), and, on every gateway, as experiment states from the
// JetStream KV bucket EXPERIMENTS (Watcher). Data goes out as the decisions of
// Decider, which wraps a trial's policy decider and, for a user assigned to an
// arm, evaluates that arm's variant and marks the decision with the
// experiment, the arm and the variant's revision; and as a Report (per-arm
// outcomes with Wilson intervals, Newcombe intervals for differences, sample
// sizes against the minimum, the testing rule stated plainly, sample-ratio
// mismatch, guard-rails and a one-line conclusion).
//
// Assignment is sticky: a hash of the pseudonymous user id salted with the
// experiment name, independent of the rollout's assignment of users to models.
// A guard-rail crossing stops the experiment (Manager.Reconcile); the stop is
// written to the bucket and every gateway's Decider returns all users to the
// control policy as soon as the watch delivers it (milliseconds).
package experiment
