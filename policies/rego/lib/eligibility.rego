# METADATA
# title: Eligibility
# description: |
#   data.rules.eligibility = {"tenants": [...], "cohorts": [...],
#   "attributes": {"name": ["allowed value", ...]}}; an empty or absent list
#   admits everyone. Denies callers outside them (not_eligible).
package stagegate.lib.eligibility

default cfg := null

cfg := data.rules.eligibility if is_object(data.rules.eligibility)

default tenant := ""

tenant := input.caller.tenant if is_string(input.caller.tenant)

default cohort := ""

cohort := input.caller.cohort if is_string(input.caller.cohort)

deny contains {"code": "not_eligible", "message": sprintf("tenant %q does not take part in this trial", [tenant])} if {
	count(cfg.tenants) > 0
	not tenant in cfg.tenants
}

deny contains {"code": "not_eligible", "message": sprintf("cohort %q does not take part in this trial", [cohort])} if {
	count(cfg.cohorts) > 0
	not cohort in cfg.cohorts
}

deny contains {
	"code": "not_eligible",
	"message": sprintf("participants need the attribute %s set to one of %s", [name, concat(", ", allowed)]),
} if {
	some name, allowed in cfg.attributes
	not has_attribute(name, allowed)
}

# A helper, not an inline `not x in y`: with x undefined that expression is
# undefined rather than true.
has_attribute(name, allowed) if input.caller.attributes[name] in allowed
