package stagegate.lib.quota_test

import data.stagegate.lib.quota
import data.stagegate.lib.testinput_test.plain
import data.stagegate.lib.testinput_test.with_path

over := with_path("/caller/over_quota", true)

test_within_quota if {
	quota.deny == set() with input as plain with data.rules as {"over_quota": {}}
	quota.baseline == set() with input as plain with data.rules as {"over_quota": {}}
}

test_over_quota_is_denied_by_default if {
	d := quota.deny with input as over with data.rules as {"over_quota": {}}
	d == {{"code": "over_quota", "message": "you have used up your quota in this trial; try again later"}}
}

test_over_quota_can_go_to_the_baseline if {
	b := quota.baseline with input as over with data.rules as {"over_quota": {"action": "baseline"}}
	{r.code | some r in b} == {"over_quota_baseline"}
	quota.deny == set() with input as over with data.rules as {"over_quota": {"action": "baseline"}}
}

test_off_without_config if {
	quota.deny == set() with input as over with data.rules as {}
}
