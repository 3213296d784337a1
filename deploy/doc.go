// Package deploy moves a trial's candidate model from first contact with real
// traffic to general availability, and stops it when it misbehaves.
//
//   - Spec (spec.go) is a rollout plan as a company writes it in YAML: candidate,
//     baseline and ordered steps, each exactly one of shadow, canary, pilot,
//     general, pause or gate. ParseSpec rejects unknown fields with line numbers.
//   - The Controller (controller.go, reconcile.go) evaluates every rollout on a
//     clock: an ordered list of reconcile steps (aborted → kill switch → paused →
//     completed → steps), where a gate (gate.go) decides Pass, Fail, Inconclusive or
//     Error from the incident store's evidence with Wilson score bounds (wilson.go).
//     Manual actions (actions.go: Apply, Abort, Pause, Resume, Promote) are
//     recorded with who and why.
//   - State (state.go) lives in the JetStream KV bucket ROLLOUTS under the trial
//     id, written with compare-and-set on the revision read, so several controllers
//     never overwrite each other.
//   - The Watcher (watcher.go) turns those states into Plans for the Assigner
//     (assign.go), which every gateway asks once per request, lock-free: sticky
//     candidate/baseline by user, deterministic shadow sampling by request, and
//     whether a candidate failure may fall back to the baseline.
//   - Lease (lease.go) elects one leader among processes through a TTL'd key in
//     the KV bucket LEADERS (create to take, compare-and-set to renew), so only
//     one of several controller processes runs the reconcile loop; the watcher
//     also re-reads its rollouts every WatcherResync (watcher_resync.go), so a
//     NATS node dying under its watch cannot delay a kill switch.
//   - Models (models.go) registers OpenAI-compatible upstreams with credentials by
//     reference in the KV bucket MODELS, which gateways watch (Models.Watch) to
//     route to new models without a restart; CheckModel (check.go) checks one in
//     plain words.
//   - schema/rollout.v1.json (Schemas) is the JSON Schema of a plan and, under
//     $defs/state, of the stagegate.rollout.v1 state.
//
// Data comes in from the incident store (interactions, confirmed and unresolved
// incidents) and from people (plans, actions); it goes out as KV states, which
// become the gateways' plans.
package deploy
