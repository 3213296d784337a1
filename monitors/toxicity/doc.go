// Package toxicity is the toxicity detector of the risk monitors.
//
// Data comes in as one events.Interaction from the monitors runner (or from
// `stagegate scan`); the user's messages and the model's response are read
// separately. It finds insults, harassment, threats and hate directed at a
// person or a group, in English and Chinese: a lexicon of profanity, insults,
// slurs, dehumanising words and violent wishes (masked spellings such as
// "f*ck" included), weighed by context rules — aimed at "you" or at a named
// person or group it counts more; quoted, discussed, negated or used as an
// intensifier of praise it counts less.
//
// Data goes out as at most one events.Finding of category "toxicity"; toxic
// text in the response rates higher than in the prompt.
package toxicity
