package stagegate.lib.window_test

import data.stagegate.lib.testinput_test.with_path
import data.stagegate.lib.window

cfg := {"window": {"start": "2025-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}

codes(t) := c if {
	d := window.deny with input as with_path("/time", t) with data.rules as cfg
	c := {r.code | some r in d}
}

test_inside_the_window if codes("2025-06-01T12:00:00Z") == set()

test_start_is_inclusive if codes("2025-01-01T00:00:00Z") == set()

test_before_start if codes("2024-12-31T23:59:00Z") == {"trial_not_started"}

test_end_is_exclusive if codes("2026-01-01T00:00:00Z") == {"trial_ended"}

test_unreadable_time if codes("yesterday") == {"trial_time_unknown"}

test_open_ended if {
	d := window.deny with input as with_path("/time", "2099-01-01T00:00:00Z") with data.rules as {"window": {"start": "2025-01-01T00:00:00Z"}}
	d == set()
}

test_off_without_config if {
	d := window.deny with input as with_path("/time", "garbage") with data.rules as {}
	d == set()
}
