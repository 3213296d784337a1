package stagegate.lib.pii_test

import data.stagegate.lib.pii
import data.stagegate.lib.testinput_test.with_path

cfg := {"pii": {"blocked_types": ["card", "phone"], "allowed_cohorts": ["clinicians"], "allowed_tenants": ["bank"]}}

with_pii(types) := with_path("/signals/pii_types", types)

test_blocked_type if {
	d := pii.deny with input as with_pii(["card"]) with data.rules as cfg
	d == {{"code": "pii_blocked", "message": "prompts carrying payment card numbers are not allowed in this trial; remove them and try again"}}
}

test_one_reason_per_blocked_type if {
	d := pii.deny with input as with_pii(["card", "email", "phone"]) with data.rules as cfg
	count(d) == 2
}

test_other_types_pass if {
	pii.deny == set() with input as with_pii(["email"]) with data.rules as cfg
}

test_allowed_cohort_and_tenant if {
	c := json.patch(with_pii(["card"]), [{"op": "replace", "path": "/caller/cohort", "value": "clinicians"}])
	pii.deny == set() with input as c with data.rules as cfg
	t := json.patch(with_pii(["card"]), [{"op": "replace", "path": "/caller/tenant", "value": "bank"}])
	pii.deny == set() with input as t with data.rules as cfg
}

test_off_without_config if {
	pii.deny == set() with input as with_pii(["card"]) with data.rules as {}
}
