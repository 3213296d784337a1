package stagegate.lib.minors_test

import data.stagegate.lib.minors
import data.stagegate.lib.testinput_test.plain
import data.stagegate.lib.testinput_test.with_path

cfg := {
	"attribute": "age_band", "values": ["under_18"], "denied_topics": ["dating"],
	"max_tokens": 200, "notice": "Limited for minors.",
}

minor := with_path("/caller/attributes", {"age_band": "under_18"})

adult := with_path("/caller/attributes", {"age_band": "adult"})

test_adult_is_not_restricted if {
	minors.deny == set() with input as json.patch(adult, [{"op": "replace", "path": "/signals/topics", "value": ["dating"]}]) with data.rules as {"minors": cfg}
	minors.max_tokens == 0 with input as adult with data.rules as {"minors": cfg}
	minors.notice == "" with input as adult with data.rules as {"minors": cfg}
}

test_minor_is_capped_noticed_and_topic_restricted if {
	minors.max_tokens == 200 with input as minor with data.rules as {"minors": cfg}
	minors.notice == "Limited for minors." with input as minor with data.rules as {"minors": cfg}
	d := minors.deny with input as json.patch(minor, [{"op": "replace", "path": "/signals/topics", "value": ["dating"]}]) with data.rules as {"minors": cfg}
	d == {{"code": "minor_topic_denied", "message": "requests about dating are not allowed for minors in this trial"}}
}

test_deny_action if {
	d := minors.deny with input as minor with data.rules as {"minors": object.union(cfg, {"action": "deny"})}
	{r.code | some r in d} == {"minor_not_allowed"}
}

test_baseline_action if {
	b := minors.baseline with input as minor with data.rules as {"minors": object.union(cfg, {"action": "baseline"})}
	{r.code | some r in b} == {"minor_baseline"}
}

test_missing_attribute_is_adult_by_default if {
	not minors.is_minor with input as plain with data.rules as {"minors": cfg}
}

test_missing_attribute_can_count_as_minor if {
	minors.is_minor with input as plain with data.rules as {"minors": object.union(cfg, {"missing": "minor"})}
}

test_off_without_config if {
	not minors.is_minor with input as minor with data.rules as {}
}
