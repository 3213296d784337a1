package events

import "embed"

// Schemas holds the JSON Schema of every payload (schema/<name>.v1.json), the
// contract external monitors in any language rely on.
//
//go:embed schema/*.json
var Schemas embed.FS
