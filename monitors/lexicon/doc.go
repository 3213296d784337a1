// Package lexicon is the text matcher shared by the lexicon-based risk detectors
// (injection, jailbreak, toxicity, unsafe_advice).
//
// Text comes in as the strings of one interaction (a prompt message or the
// response). Tokenize splits it into case-folded words (each Han character is a
// word of its own, masked profanity such as "f*ck" stays one word) with their
// offsets in bytes and Unicode code points. A Lexicon, compiled once from small
// phrase patterns, goes out as Hits: which entry matched which run of tokens, so
// that a detector can score them and report code-point spans as evidence.
//
// Pattern syntax, one phrase per entry, elements separated by spaces:
//
//	word       the token, case-folded ("ignore")
//	word*      a token starting with word ("instruct*"; at least 3 bytes before '*')
//	a|b|c      any of the alternatives, each a word or word*
//	~N         up to N arbitrary tokens (N ≤ 9) before the next element
//	(a b|c)    any of the alternatives, each a sequence of words (the last
//	           may end in '*')
//
// A word written in Chinese stands for its characters in sequence ("忽略" is
// "忽" then "略"), because Tokenize makes every Han character a token.
package lexicon
