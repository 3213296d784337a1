# METADATA
# title: Purpose allow-list by topic
# description: |
#   data.rules.purpose = {"denied_topics": [...], "allowed_topics": [...],
#   "require_topic": false}. Topics are the names of the trial's keyword lists
#   the prompt matched (input.signals.topics). Denies a denied topic
#   (topic_denied), a topic outside a non-empty allow-list (topic_not_allowed)
#   and, with require_topic, a prompt matching no allowed topic (off_purpose).
package stagegate.lib.purpose

default cfg := null

cfg := data.rules.purpose if is_object(data.rules.purpose)

default topics := []

topics := input.signals.topics if is_array(input.signals.topics)

denied := {t | some t in cfg.denied_topics}

allowed := {t | some t in cfg.allowed_topics}

deny contains {"code": "topic_denied", "message": sprintf("requests about %s are not allowed in this trial", [t])} if {
	some t in topics
	t in denied
}

deny contains {"code": "topic_not_allowed", "message": sprintf("requests about %s are outside the purposes of this trial", [t])} if {
	count(allowed) > 0
	some t in topics
	not t in allowed
	not t in denied
}

on_purpose if {
	count(allowed) == 0
	count(topics) > 0
}

on_purpose if {
	some t in topics
	t in allowed
}

deny contains {"code": "off_purpose", "message": off_purpose_message} if {
	cfg.require_topic == true
	not on_purpose
}

off_purpose_message := "this trial only answers requests within its purposes" if {
	count(allowed) == 0
} else := sprintf("this trial only answers requests about: %s", [concat(", ", sort(allowed))])
