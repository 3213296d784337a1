# METADATA
# title: Stagegate demo trial policy
# description: |
#   Denies requests about the trial's denied topics, caps the answer length,
#   asks for PII redaction in storage, and allows the rest. Input and decision
#   contracts: policies/README.md (stagegate.policy.input.v1 and
#   stagegate.policy.decision.v1). Data: data.json beside this file.
package stagegate

# The decision the engine evaluates (query data.stagegate.decision). Every rule it
# reads has a default, so the decision is defined for any input, even {}.
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

default allow := false

allow if count(deny_reasons) == 0

# Reasons in a stable (sorted) order.
reasons := [r | some r in deny_reasons]

deny_reasons contains {
	"code": "topic_denied",
	"message": sprintf("requests about %s are not allowed in this trial", [topic]),
} if {
	some topic in input.signals.topics
	topic in denied_topics
}

default denied_topics := set()

denied_topics := {t | some t in data.denied_topics}

# "" lets the rollout plan choose between candidate and baseline.
default route := ""

# The answer length cap: the client's max_tokens, but never more than
# data.max_tokens; the cap itself when the client set none. 0 = no cap.
default max_tokens := 0

max_tokens := token_cap if {
	requested <= 0
} else := min([requested, token_cap])

default token_cap := 0

token_cap := data.max_tokens if {
	is_number(data.max_tokens)
	data.max_tokens > 0
}

default requested := 0

requested := input.request.max_tokens if is_number(input.request.max_tokens)

# Store the interaction with PII redacted whenever the prompt shows any.
default redact_pii_in_storage := false

redact_pii_in_storage if count(input.signals.pii_types) > 0

default notice := ""

notice := data.notice if is_string(data.notice)

default log_level := "info"

default fail_mode := "closed"

fail_mode := data.fail_mode if data.fail_mode in {"open", "closed"}
