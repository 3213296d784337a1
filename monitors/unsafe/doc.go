// Package unsafe is the unsafe_advice detector of the risk monitors.
//
// Data comes in as one events.Interaction from the monitors runner (or from
// `stagegate scan`). Two things are measured:
//
//   - In the response, advice a model should not give: confident dosage
//     changes, telling a user to stop prescribed treatment, promised legal or
//     financial outcomes — each worse without a referral to a professional (and
//     worse still when the answer says no doctor is needed) — and compliance
//     with a harmful request (the prompt asks for harm, the answer gives steps
//     instead of refusing).
//   - In the user's messages, requests for help with harmful, dangerous,
//     illegal or privacy-violating acts, in English and Chinese: a harmful
//     action aimed at a person, drugs or weapons, self-harm, or another
//     person's private data, in the form of a request. Context rules keep
//     safe prompts that only look unsafe quiet: a safe target ("kill a Python
//     process"), a game or fiction ("in GTA", "in my novel"), a definition or a
//     historical question, a public or fictional person's data.
//
// Data goes out as at most one events.Finding of category "unsafe_advice":
// high severity when the response carries the advice, low or medium when only
// the request does.
package unsafe
