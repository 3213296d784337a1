# METADATA
# title: Mandatory AI disclosure
# description: |
#   data.rules.disclosure = {"notice": "...", "notices": {"<language>": "..."}}.
#   When present, every answer carries a notice (obligations.notice): the one
#   for input.signals.language, else notice, else a default sentence.
package stagegate.lib.disclosure

default cfg := null

cfg := data.rules.disclosure if is_object(data.rules.disclosure)

default_notice := "You are talking to an AI system that is being tested in a regulatory trial."

default notice := ""

notice := cfg.notices[input.signals.language] if {
	is_string(cfg.notices[input.signals.language])
	cfg.notices[input.signals.language] != ""
} else := cfg.notice if {
	is_string(cfg.notice)
	cfg.notice != ""
} else := default_notice if is_object(cfg)
