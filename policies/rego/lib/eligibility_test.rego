package stagegate.lib.eligibility_test

import data.stagegate.lib.eligibility
import data.stagegate.lib.testinput_test.plain
import data.stagegate.lib.testinput_test.with_path

cfg := {"eligibility": {"tenants": ["acme"], "cohorts": ["pilot", "internal"], "attributes": {"consent": ["yes"]}}}

consenting := with_path("/caller/attributes", {"consent": "yes"})

test_eligible_caller if {
	d := eligibility.deny with input as consenting with data.rules as cfg
	d == set()
}

test_other_tenant if {
	d := eligibility.deny with input as json.patch(consenting, [{"op": "replace", "path": "/caller/tenant", "value": "evil"}]) with data.rules as cfg
	d == {{"code": "not_eligible", "message": "tenant \"evil\" does not take part in this trial"}}
}

test_other_cohort if {
	d := eligibility.deny with input as json.patch(consenting, [{"op": "replace", "path": "/caller/cohort", "value": "public"}]) with data.rules as cfg
	d == {{"code": "not_eligible", "message": "cohort \"public\" does not take part in this trial"}}
}

test_missing_attribute if {
	d := eligibility.deny with input as plain with data.rules as cfg
	d == {{"code": "not_eligible", "message": "participants need the attribute consent set to one of yes"}}
}

test_empty_lists_admit_everyone if {
	d := eligibility.deny with input as plain with data.rules as {"eligibility": {"tenants": [], "cohorts": []}}
	d == set()
}

test_off_without_config if {
	d := eligibility.deny with input as {} with data.rules as {}
	d == set()
}
