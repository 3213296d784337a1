# METADATA
# title: Over quota
# description: |
#   data.rules.over_quota = {"action": "deny" (default) or "baseline"}. The
#   gateway counts each caller's use against the trial's caps and sets
#   input.caller.over_quota; this rule refuses such a request (over_quota) or
#   serves it from the baseline model (over_quota_baseline).
package stagegate.lib.quota

default cfg := null

cfg := data.rules.over_quota if is_object(data.rules.over_quota)

default action := "deny"

action := cfg.action if cfg.action in {"deny", "baseline"}

over if {
	is_object(cfg)
	input.caller.over_quota == true
}

deny contains {"code": "over_quota", "message": "you have used up your quota in this trial; try again later"} if {
	over
	action == "deny"
}

baseline contains {"code": "over_quota_baseline", "message": "over quota: served by the baseline model"} if {
	over
	action == "baseline"
}
