// Package suite assembles the default risk detectors.
//
// Configuration comes in as one Config (from the sandbox's `monitors:` YAML
// section, or the flags of `stagegate scan`); the detectors go out as a
// []monitors.Detector in a fixed order for monitors.Deps.Detectors. The
// content detectors (pii, injection, jailbreak, toxicity, unsafe_advice) are on
// by default; the slo detector needs the trial's limits and llm_judge a judge
// endpoint, so both are off unless configured.
package suite
