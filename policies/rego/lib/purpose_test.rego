package stagegate.lib.purpose_test

import data.stagegate.lib.purpose
import data.stagegate.lib.testinput_test.with_path

codes(topics, cfg) := c if {
	d := purpose.deny with input as with_path("/signals/topics", topics) with data.rules as {"purpose": cfg}
	c := {r.code | some r in d}
}

test_denied_topic_names_the_topic if {
	d := purpose.deny with input as with_path("/signals/topics", ["weapons"]) with data.rules as {"purpose": {"denied_topics": ["weapons"]}}
	d == {{"code": "topic_denied", "message": "requests about weapons are not allowed in this trial"}}
}

test_other_topics_pass_without_allow_list if codes(["travel"], {"denied_topics": ["weapons"]}) == set()

test_allow_list if {
	cfg := {"allowed_topics": ["banking"], "denied_topics": ["weapons"]}
	codes(["banking"], cfg) == set()
	codes(["travel"], cfg) == {"topic_not_allowed"}
	codes(["weapons"], cfg) == {"topic_denied"}
	codes([], cfg) == set()
}

test_require_topic if {
	cfg := {"allowed_topics": ["banking"], "require_topic": true}
	codes([], cfg) == {"off_purpose"}
	codes(["banking"], cfg) == set()
	msg := [r.message | some r in purpose.deny] with input as with_path("/signals/topics", []) with data.rules as {"purpose": cfg}
	msg == ["this trial only answers requests about: banking"]
}

test_require_any_topic_without_allow_list if {
	codes([], {"require_topic": true}) == {"off_purpose"}
	codes(["travel"], {"require_topic": true}) == set()
}

test_off_without_config if {
	d := purpose.deny with input as with_path("/signals/topics", ["weapons"]) with data.rules as {}
	d == set()
}
