# METADATA
# title: Minors protection
# description: |
#   data.rules.minors = {"attribute": "age_band" (default), "values": [...],
#   "missing": "adult" (default) or "minor", "action": "restrict" (default),
#   "baseline" or "deny", "denied_topics": [...], "max_tokens": n,
#   "notice": "..."}. A participant is a minor when the caller attribute holds
#   one of values (or, with missing "minor", when it is absent). Minors may be
#   refused (minor_not_allowed), served by the baseline (minor_baseline),
#   refused listed topics (minor_topic_denied), capped and given a notice.
package stagegate.lib.minors

default cfg := null

cfg := data.rules.minors if is_object(data.rules.minors)

default attribute := "age_band"

attribute := cfg.attribute if is_string(cfg.attribute)

default is_minor := false

is_minor if input.caller.attributes[attribute] in cfg.values

is_minor if {
	cfg.missing == "minor"
	not input.caller.attributes[attribute]
}

default action := "restrict"

action := cfg.action if cfg.action in {"restrict", "baseline", "deny"}

deny contains {
	"code": "minor_not_allowed",
	"message": "participants under the age of majority may not take part in this trial",
} if {
	is_minor
	action == "deny"
}

baseline contains {
	"code": "minor_baseline",
	"message": "participants under the age of majority are served by the baseline model",
} if {
	is_minor
	action == "baseline"
}

deny contains {"code": "minor_topic_denied", "message": sprintf("requests about %s are not allowed for minors in this trial", [t])} if {
	is_minor
	some t in input.signals.topics
	t in cfg.denied_topics
}

default max_tokens := 0

max_tokens := cfg.max_tokens if {
	is_minor
	is_number(cfg.max_tokens)
	cfg.max_tokens > 0
}

default notice := ""

notice := cfg.notice if {
	is_minor
	is_string(cfg.notice)
}
