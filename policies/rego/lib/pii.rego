# METADATA
# title: PII in prompts
# description: |
#   data.rules.pii = {"blocked_types": ["card", "email", "phone"],
#   "allowed_cohorts": [...], "allowed_tenants": [...]}. Denies a prompt that
#   carries a blocked PII type (pii_blocked), unless the caller's cohort or
#   tenant is allowed to send it.
package stagegate.lib.pii

default cfg := null

cfg := data.rules.pii if is_object(data.rules.pii)

exempt if input.caller.cohort in cfg.allowed_cohorts

exempt if input.caller.tenant in cfg.allowed_tenants

names := {"card": "payment card numbers", "email": "e-mail addresses", "phone": "phone numbers"}

deny contains {
	"code": "pii_blocked",
	"message": sprintf("prompts carrying %s are not allowed in this trial; remove them and try again", [object.get(names, t, t)]),
} if {
	some t in input.signals.pii_types
	t in cfg.blocked_types
	not exempt
}
