# METADATA
# title: Trial window
# description: |
#   data.rules.window = {"start": RFC 3339, "end": RFC 3339}, either optional.
#   Denies requests before start (trial_not_started), at or after end
#   (trial_ended), and when input.time cannot be read (trial_time_unknown).
package stagegate.lib.window

default cfg := null

cfg := data.rules.window if is_object(data.rules.window)

now := time.parse_rfc3339_ns(input.time)

deny contains {
	"code": "trial_time_unknown",
	"message": "the request time is unknown, so the trial window cannot be checked",
} if {
	is_object(cfg)
	not now
}

deny contains {"code": "trial_not_started", "message": sprintf("the trial starts at %s", [cfg.start])} if {
	now < time.parse_rfc3339_ns(cfg.start)
}

deny contains {"code": "trial_ended", "message": sprintf("the trial ended at %s", [cfg.end])} if {
	now >= time.parse_rfc3339_ns(cfg.end)
}
