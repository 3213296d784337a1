// Package deploy decides which model serves a user of a trial: rollout plans,
// sticky assignment of users to the candidate or the baseline, and (in later
// releases) gates and the controller loop that moves a candidate through stages.
//
// Plans come in from the sandbox configuration (later from the ROLLOUTS KV bucket);
// assignments go out to the gateway, which asks once per request.
package deploy
