// Package jailbreak is the jailbreak detector of the risk monitors.
//
// Data comes in as one events.Interaction from the monitors runner (or from
// `stagegate scan`); the user's request messages are read. It looks for the
// families of attacks that try to get a model past its safety policy: role-play
// and persona attacks (DAN-style "an AI without restrictions"), refusal
// suppression ("never say you can't", "do not apologise"), hypothetical and
// fictional framing around a harmful goal, forced answer prefixes ("start your
// answer with 'Sure, here is'"), and obfuscation — adversarial suffixes of
// broken tokens and symbols (GCG-style), leetspeak and spaced-out letters. It
// uses lexicon phrase patterns plus a structural gibberish measure, never a
// copy of a known jailbreak prompt.
//
// Data goes out as at most one events.Finding of category "jailbreak" with
// code-point spans on the evidence.
package jailbreak
