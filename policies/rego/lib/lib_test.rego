package stagegate.lib_test

import data.stagegate.lib
import data.stagegate.lib.testinput_test.plain
import data.stagegate.lib.testinput_test.with_path

test_no_rules_allows_everything if {
	d := lib.decision with input as plain with data.rules as {}
	d == {
		"allow": true, "reasons": [], "route": "",
		"obligations": {"redact_pii_in_storage": false, "max_tokens": 0, "notice": "", "log_level": "info"},
		"fail_mode": "closed",
	}
}

test_defined_for_an_empty_input_and_no_data if {
	d := lib.decision with input as {} with data.rules as null
	d.allow
}

test_denial_wins_over_baseline if {
	rules := {"over_quota": {"action": "baseline"}, "purpose": {"denied_topics": ["weapons"]}}
	x := json.patch(plain, [
		{"op": "replace", "path": "/caller/over_quota", "value": true},
		{"op": "replace", "path": "/signals/topics", "value": ["weapons"]},
	])
	d := lib.decision with input as x with data.rules as rules
	not d.allow
	d.route == ""
	[r.code | some r in d.reasons] == ["topic_denied"]
	d.obligations.log_level == "warn"
}

test_reasons_are_sorted if {
	rules := {"purpose": {"denied_topics": ["b", "a"]}, "pii": {"blocked_types": ["card"]}}
	x := json.patch(plain, [
		{"op": "replace", "path": "/signals/topics", "value": ["b", "a"]},
		{"op": "replace", "path": "/signals/pii_types", "value": ["card"]},
	])
	d := lib.decision with input as x with data.rules as rules
	[r.code | some r in d.reasons] == ["pii_blocked", "topic_denied", "topic_denied"]
}

test_token_caps if {
	rules := {"answer": {"max_tokens": 1000}, "minors": {"values": ["kid"], "max_tokens": 100}}
	lib.max_tokens == 1000 with input as plain with data.rules as rules
	lib.max_tokens == 300 with input as with_path("/request/max_tokens", 300) with data.rules as rules
	lib.max_tokens == 1000 with input as with_path("/request/max_tokens", 5000) with data.rules as rules
	kid := json.patch(plain, [{"op": "replace", "path": "/caller/attributes", "value": {"age_band": "kid"}}])
	lib.max_tokens == 100 with input as kid with data.rules as rules
	lib.max_tokens == 77 with input as with_path("/request/max_tokens", 77) with data.rules as {}
}

test_redaction_modes if {
	pii := with_path("/signals/pii_types", ["email"])
	lib.redact_pii_in_storage with input as pii with data.rules as {}
	not lib.redact_pii_in_storage with input as plain with data.rules as {}
	lib.redact_pii_in_storage with input as plain with data.rules as {"storage": {"redact_pii": "always"}}
	not lib.redact_pii_in_storage with input as pii with data.rules as {"storage": {"redact_pii": "never"}}
}

test_notices_are_joined if {
	rules := {"disclosure": {"notice": "AI."}, "minors": {"values": ["kid"], "notice": "Kids."}}
	kid := json.patch(plain, [{"op": "replace", "path": "/caller/attributes", "value": {"age_band": "kid"}}])
	lib.notice == "AI. Kids." with input as kid with data.rules as rules
	lib.notice == "AI." with input as plain with data.rules as rules
}

test_fail_mode_and_log_level_from_data if {
	d := lib.decision with input as plain with data.rules as {"fail_mode": "open", "answer": {"log_level": "debug"}}
	d.fail_mode == "open"
	d.obligations.log_level == "debug"
	e := lib.decision with input as plain with data.rules as {"fail_mode": "maybe", "answer": {"log_level": "loud"}}
	e.fail_mode == "closed"
	e.obligations.log_level == "info"
}
