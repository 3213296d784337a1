# METADATA
# title: Stagegate rule library
# description: |
#   Composes a decision (stagegate.policy.decision.v1) from the rules a trial
#   switches on and parameterises in data.rules: a rule whose key is absent is
#   off. A trial's policy uses it with `decision := lib.decision` after
#   `import data.stagegate.lib`; policies/README.md lists every rule and key.
#   Reads input only through constant paths, so the engine's memo can key on
#   exactly the fields the rules look at.
package stagegate.lib

import data.stagegate.lib.cohorts
import data.stagegate.lib.disclosure
import data.stagegate.lib.eligibility
import data.stagegate.lib.injection
import data.stagegate.lib.minors
import data.stagegate.lib.pii
import data.stagegate.lib.purpose
import data.stagegate.lib.quota
import data.stagegate.lib.window

decision := {
	"allow": allow,
	"reasons": reasons,
	"route": route,
	"obligations": {
		"redact_pii_in_storage": redact_pii_in_storage,
		"max_tokens": max_tokens,
		"notice": notice,
		"log_level": log_level,
	},
	"fail_mode": fail_mode,
}

# The trial's rule configuration; {} when the trial configures none.
default rules := {}

rules := data.rules if is_object(data.rules)

# Every rule's refusals, and every rule's requests to serve from the baseline.
deny := union({
	window.deny, eligibility.deny, cohorts.deny, purpose.deny,
	minors.deny, quota.deny, pii.deny, injection.deny,
})

baseline := union({cohorts.baseline, minors.baseline, quota.baseline, injection.baseline})

default allow := false

allow if count(deny) == 0

# On a denial the reasons are why; otherwise why the route was forced (if it was).
# Both in a stable (sorted) order.
reasons := [r | some r in deny] if {
	count(deny) > 0
} else := [r | some r in baseline]

default route := ""

route := "baseline" if {
	count(deny) == 0
	count(baseline) > 0
}

# The answer cap: the smallest positive cap of answer.max_tokens and the
# minors rule; the client's own max_tokens when smaller; 0 = no cap.
caps := [c |
	some c in [object.get(rules, ["answer", "max_tokens"], 0), minors.max_tokens]
	is_number(c)
	c > 0
]

default token_cap := 0

token_cap := min(caps) if count(caps) > 0

default requested := 0

requested := input.request.max_tokens if {
	is_number(input.request.max_tokens)
	input.request.max_tokens > 0
}

default max_tokens := 0

max_tokens := token_cap if {
	requested == 0
} else := requested if {
	token_cap == 0
} else := min([requested, token_cap])

# Notices to add to the answer: the AI disclosure first, then the minors notice.
notice := concat(" ", [n | some n in [disclosure.notice, minors.notice]; n != ""])

# storage.redact_pii: "when_found" (default), "always" or "never".
default redact_mode := "when_found"

redact_mode := rules.storage.redact_pii if rules.storage.redact_pii in {"when_found", "always", "never"}

default redact_pii_in_storage := false

redact_pii_in_storage if redact_mode == "always"

redact_pii_in_storage if {
	redact_mode == "when_found"
	count(input.signals.pii_types) > 0
}

default configured_log_level := "info"

configured_log_level := rules.answer.log_level if rules.answer.log_level in {"debug", "info", "warn", "error"}

# Denials are logged at warn, so they stand out.
log_level := "warn" if {
	count(deny) > 0
} else := configured_log_level

default fail_mode := "closed"

fail_mode := rules.fail_mode if rules.fail_mode in {"open", "closed"}
