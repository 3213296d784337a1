package stagegate_test

import data.stagegate

plain := {
	"trial": "standard",
	"stage": "canary",
	"time": "2025-06-01T12:00:00Z",
	"request": {"model": "chat", "stream": false, "max_tokens": 0, "message_count": 1, "roles": ["user"], "estimated_prompt_tokens": 12},
	"caller": {"tenant": "acme", "user": "u-1", "cohort": "pilot", "attributes": {"age_band": "adult"}, "over_quota": false},
	"signals": {"pii_types": [], "topics": [], "injection_score": 0, "language": "en"},
}

patch(ops) := json.patch(plain, ops)

test_allows_a_plain_request_with_the_disclosure if {
	d := stagegate.decision with input as plain
	d.allow
	d.reasons == []
	d.route == ""
	d.obligations.notice == "You are talking to an AI model under test in a regulatory trial."
	d.obligations.max_tokens == 1024
	d.obligations.log_level == "info"
	d.fail_mode == "closed"
}

test_chinese_prompts_get_the_chinese_notice if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/signals/language", "value": "zh"}])
	d.obligations.notice == "您正在与受监管试验中的人工智能模型对话。"
}

test_denies_weapons_like_the_demo if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/signals/topics", "value": ["weapons"]}])
	not d.allow
	d.reasons == [{"code": "topic_denied", "message": "requests about weapons are not allowed in this trial"}]
	d.obligations.log_level == "warn"
}

test_outside_the_window_is_denied if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/time", "value": "2031-01-01T00:00:00Z"}])
	not d.allow
	d.reasons[0].code == "trial_ended"
}

test_public_cohort_gets_the_baseline_at_canary if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/caller/cohort", "value": "public"}])
	d.allow
	d.route == "baseline"
	d.reasons[0].code == "cohort_not_in_stage"
}

test_public_cohort_gets_the_candidate_at_general if {
	d := stagegate.decision with input as patch([
		{"op": "replace", "path": "/caller/cohort", "value": "public"},
		{"op": "replace", "path": "/stage", "value": "general"},
	])
	d.allow
	d.route == ""
}

test_minor_is_capped_and_told if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/caller/attributes/age_band", "value": "13_17"}])
	d.allow
	d.obligations.max_tokens == 256
	d.obligations.notice == "You are talking to an AI model under test in a regulatory trial. This service is limited for participants under 18."
}

test_over_quota_goes_to_the_baseline if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/caller/over_quota", "value": true}])
	d.allow
	d.route == "baseline"
	d.reasons == [{"code": "over_quota_baseline", "message": "over quota: served by the baseline model"}]
}

test_card_numbers_are_blocked_but_email_is_redacted if {
	card := stagegate.decision with input as patch([{"op": "replace", "path": "/signals/pii_types", "value": ["card"]}])
	not card.allow
	card.reasons[0].code == "pii_blocked"
	email := stagegate.decision with input as patch([{"op": "replace", "path": "/signals/pii_types", "value": ["email"]}])
	email.allow
	email.obligations.redact_pii_in_storage
}

test_unknown_cohort_is_not_eligible if {
	d := stagegate.decision with input as patch([{"op": "replace", "path": "/caller/cohort", "value": "press"}])
	not d.allow
	"not_eligible" in {r.code | some r in d.reasons}
}

test_decision_is_defined_for_an_empty_input if {
	d := stagegate.decision with input as {}
	not d.allow
	{r.code | some r in d.reasons} == {"trial_time_unknown", "not_eligible"}
	d.fail_mode == "closed"
}
