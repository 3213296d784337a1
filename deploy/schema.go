package deploy

import "embed"

// Schemas holds schema/rollout.v1.json, the JSON Schema of a rollout plan (the
// document's root, for editors and external tools that write plans) and, under
// $defs/state, of the stagegate.rollout.v1 state that the ROLLOUTS bucket and
// the admin API hold.
//
//go:embed schema/*.json
var Schemas embed.FS

// SchemaFile is the name of the rollout schema in Schemas.
const SchemaFile = "schema/rollout.v1.json"
