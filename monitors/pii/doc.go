// Package pii is the personal-data detector of the risk monitors.
//
// Data comes in as one events.Interaction from the monitors runner (or from
// `stagegate scan`); its request messages ("prompt") and response are scanned
// with hand-written scanners (no regular expressions; they run on every
// interaction): e-mail addresses; phone numbers (+86 and bare Chinese mobiles,
// E.164, US formats, national formats in groups — the weaker formats only next
// to a word such as "phone", "call" or "fax"); payment cards (Luhn); IBANs
// (country length, mod-97); Chinese resident identity numbers (ISO 7064 MOD
// 11-2 check character, province code, birth date); US social security
// numbers in issued ranges; IPv4 addresses; passport-like numbers after the
// word passport; person names (a modest gazetteer of given names and surnames,
// surname morphology, capitalisation and context words) and street addresses
// (street types and prefixes in many languages, units, house numbers, the
// lines of an address block). A failed checksum drops the match; context words
// decide the ambiguous formats.
//
// Data goes out as at most one events.Finding of category "pii" whose spans, in
// Unicode code points and with their kind, point at every match; the runner
// also uses those spans to redact stored interactions. PII in the response that
// the prompt did not contain is a possible leak (severity high); PII only typed
// by the user scores low or medium; a person's name alone scores low and, in a
// response, is not reported at all (answers name people all the time).
package pii
