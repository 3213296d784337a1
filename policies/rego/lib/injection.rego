# METADATA
# title: Prompt injection
# description: |
#   data.rules.injection = {"max_score": 0.7 (default), "action": "deny"
#   (default) or "baseline"}. A prompt whose input.signals.injection_score
#   reaches max_score is refused or served by the baseline
#   (prompt_injection_suspected).
package stagegate.lib.injection

default cfg := null

cfg := data.rules.injection if is_object(data.rules.injection)

default action := "deny"

action := cfg.action if cfg.action in {"deny", "baseline"}

default max_score := 0.7

max_score := cfg.max_score if is_number(cfg.max_score)

suspected if {
	is_object(cfg)
	input.signals.injection_score >= max_score
}

reason := {
	"code": "prompt_injection_suspected",
	"message": "the prompt looks like an attempt to override the model's instructions",
}

deny contains reason if {
	suspected
	action == "deny"
}

baseline contains reason if {
	suspected
	action == "baseline"
}
