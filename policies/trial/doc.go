// Package trial reads a regulator's trial definition: a YAML file saying who
// runs the trial and who oversees it, its window, participants and cohorts, the
// models under trial, allowed purposes, caps, data handling, risk thresholds and
// the policy to evaluate.
//
// Data comes in as YAML bytes (a file, or the body of the admin API's trial
// apply); Parse decodes them strictly (unknown fields and wrong types are
// errors) and validates everything at once, every problem named as
// file:line: field: what. Data goes out as a *Trial the sandbox wires into the
// gateway (window, caps, topics, policy source) and the rollout controller
// (risk thresholds); the admin API stores the source with numbered revisions.
package trial
