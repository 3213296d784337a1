package stagegate_test

import data.stagegate

plain := {
	"trial": "demo",
	"stage": "canary",
	"time": "2025-01-01T00:00:00Z",
	"request": {"model": "chat", "stream": false, "max_tokens": 0, "message_count": 1, "roles": ["user"], "estimated_prompt_tokens": 12},
	"caller": {"tenant": "acme", "user": "u-1", "cohort": "pilot", "attributes": {}, "over_quota": false},
	"signals": {"pii_types": [], "topics": [], "injection_score": 0, "language": "en"},
}

with_topics(topics) := json.patch(plain, [{"op": "replace", "path": "/signals/topics", "value": topics}])

with_max_tokens(n) := json.patch(plain, [{"op": "replace", "path": "/request/max_tokens", "value": n}])

test_allows_a_plain_request if {
	d := stagegate.decision with input as plain
	d.allow
	d.reasons == []
	d.route == ""
	d.fail_mode == "closed"
	d.obligations.log_level == "info"
	not d.obligations.redact_pii_in_storage
}

test_denies_a_denied_topic if {
	d := stagegate.decision with input as with_topics(["medical_dosing"])
	not d.allow
	d.reasons == [{"code": "topic_denied", "message": "requests about medical_dosing are not allowed in this trial"}]
}

test_one_reason_per_denied_topic_in_sorted_order if {
	d := stagegate.decision with input as with_topics(["weapons", "cooking", "medical_dosing"])
	not d.allow
	[r.message | some r in d.reasons] == [
		"requests about medical_dosing are not allowed in this trial",
		"requests about weapons are not allowed in this trial",
	]
}

test_allows_other_topics if {
	d := stagegate.decision with input as with_topics(["cooking", "travel"])
	d.allow
}

test_denied_topics_come_from_data if {
	d := stagegate.decision with input as with_topics(["cooking"]) with data.denied_topics as ["cooking"]
	not d.allow
}

test_max_tokens_defaults_to_the_cap if {
	d := stagegate.decision with input as with_max_tokens(0)
	d.obligations.max_tokens == 512
}

test_max_tokens_caps_a_larger_request if {
	d := stagegate.decision with input as with_max_tokens(4096)
	d.obligations.max_tokens == 512
}

test_max_tokens_keeps_a_smaller_request if {
	d := stagegate.decision with input as with_max_tokens(100)
	d.obligations.max_tokens == 100
}

test_no_cap_without_data if {
	d := stagegate.decision with input as with_max_tokens(100) with data.max_tokens as null
	d.obligations.max_tokens == 0
}

test_redacts_when_the_prompt_shows_pii if {
	pii := json.patch(plain, [{"op": "replace", "path": "/signals/pii_types", "value": ["email"]}])
	d := stagegate.decision with input as pii
	d.allow
	d.obligations.redact_pii_in_storage
}

test_fail_mode_from_data if {
	d := stagegate.decision with input as plain with data.fail_mode as "open"
	d.fail_mode == "open"
}

test_fail_mode_ignores_unknown_values if {
	d := stagegate.decision with input as plain with data.fail_mode as "sometimes"
	d.fail_mode == "closed"
}

test_decision_is_defined_for_an_empty_input if {
	d := stagegate.decision with input as {}
	d.allow
	d.obligations.max_tokens == 512
	d.fail_mode == "closed"
}
