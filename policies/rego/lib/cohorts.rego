# METADATA
# title: Cohort gating by stage
# description: |
#   data.rules.cohort_stages = {"stages": {"<stage>": ["<cohort>" or "*", ...]},
#   "action": "baseline" (default) or "deny"}. A cohort not listed for the
#   current stage (a stage not listed admits no cohort) is kept off the
#   candidate: served by the baseline, or refused (cohort_not_in_stage).
package stagegate.lib.cohorts

default cfg := null

cfg := data.rules.cohort_stages if is_object(data.rules.cohort_stages)

default action := "baseline"

action := cfg.action if cfg.action in {"baseline", "deny"}

default stage := ""

stage := input.stage if is_string(input.stage)

default cohort := ""

cohort := input.caller.cohort if is_string(input.caller.cohort)

admitted if "*" in cfg.stages[stage]

admitted if cohort in cfg.stages[stage]

gated if {
	is_object(cfg)
	not admitted
}

reason := {
	"code": "cohort_not_in_stage",
	"message": sprintf("cohort %q is not admitted to the candidate model at stage %q", [cohort, stage]),
}

deny contains reason if {
	gated
	action == "deny"
}

baseline contains reason if {
	gated
	action == "baseline"
}
