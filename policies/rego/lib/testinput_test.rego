# Shared test input for the library's tests.
package stagegate.lib.testinput_test

plain := {
	"trial": "t",
	"stage": "canary",
	"time": "2025-06-01T12:00:00Z",
	"request": {"model": "chat", "stream": false, "max_tokens": 0, "message_count": 1, "roles": ["user"], "estimated_prompt_tokens": 12},
	"caller": {"tenant": "acme", "user": "u-1", "cohort": "pilot", "attributes": {}, "over_quota": false},
	"signals": {"pii_types": [], "topics": [], "injection_score": 0, "language": "en"},
}

with_path(path, value) := json.patch(plain, [{"op": "add", "path": path, "value": value}])
