package stagegate.lib.injection_test

import data.stagegate.lib.injection
import data.stagegate.lib.testinput_test.with_path

scored(s) := with_path("/signals/injection_score", s)

test_below_the_threshold if {
	injection.deny == set() with input as scored(0.69) with data.rules as {"injection": {}}
}

test_default_threshold_is_inclusive if {
	d := injection.deny with input as scored(0.7) with data.rules as {"injection": {}}
	{r.code | some r in d} == {"prompt_injection_suspected"}
}

test_configured_threshold_and_baseline if {
	cfg := {"injection": {"max_score": 0.9, "action": "baseline"}}
	injection.baseline == set() with input as scored(0.8) with data.rules as cfg
	count(injection.baseline) == 1 with input as scored(0.95) with data.rules as cfg
	injection.deny == set() with input as scored(0.95) with data.rules as cfg
}

test_off_without_config if {
	injection.deny == set() with input as scored(1) with data.rules as {}
}
