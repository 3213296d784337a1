package stagegate.lib.cohorts_test

import data.stagegate.lib.cohorts
import data.stagegate.lib.testinput_test.plain

cfg := {"cohort_stages": {"stages": {"shadow": ["internal"], "canary": ["internal", "pilot"], "general": ["*"]}}}

at(stage, cohort) := json.patch(plain, [
	{"op": "replace", "path": "/stage", "value": stage},
	{"op": "replace", "path": "/caller/cohort", "value": cohort},
])

test_admitted_cohort if {
	b := cohorts.baseline with input as at("canary", "pilot") with data.rules as cfg
	b == set()
}

test_gated_cohort_goes_to_the_baseline if {
	b := cohorts.baseline with input as at("shadow", "pilot") with data.rules as cfg
	b == {{"code": "cohort_not_in_stage", "message": "cohort \"pilot\" is not admitted to the candidate model at stage \"shadow\""}}
	d := cohorts.deny with input as at("shadow", "pilot") with data.rules as cfg
	d == set()
}

test_star_admits_every_cohort if {
	b := cohorts.baseline with input as at("general", "anyone") with data.rules as cfg
	b == set()
}

test_unlisted_stage_admits_nobody if {
	b := cohorts.baseline with input as at("pilot", "internal") with data.rules as cfg
	count(b) == 1
}

test_deny_action if {
	d := cohorts.deny with input as at("shadow", "pilot") with data.rules as {"cohort_stages": object.union(cfg.cohort_stages, {"action": "deny"})}
	{r.code | some r in d} == {"cohort_not_in_stage"}
}

test_off_without_config if {
	b := cohorts.baseline with input as at("shadow", "pilot") with data.rules as {}
	b == set()
}
