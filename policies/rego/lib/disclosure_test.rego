package stagegate.lib.disclosure_test

import data.stagegate.lib.disclosure
import data.stagegate.lib.testinput_test.with_path

cfg := {"disclosure": {"notice": "AI under test.", "notices": {"zh": "人工智能测试中。"}}}

test_notice_by_language if {
	disclosure.notice == "人工智能测试中。" with input as with_path("/signals/language", "zh") with data.rules as cfg
	disclosure.notice == "AI under test." with input as with_path("/signals/language", "en") with data.rules as cfg
	disclosure.notice == "AI under test." with input as {} with data.rules as cfg
}

test_mandatory_even_without_text if {
	disclosure.notice == disclosure.default_notice with input as {} with data.rules as {"disclosure": {}}
}

test_off_without_config if {
	disclosure.notice == "" with input as {} with data.rules as {}
}
