// Package pii is the personal-data detector of the risk monitors.
//
// Data comes in as one events.Interaction from the monitors runner; its request
// messages ("prompt") and response are scanned for e-mail addresses, phone numbers
// (+86 mobiles, bare Chinese mobiles, E.164 international numbers, US formats) and
// Luhn-valid payment card numbers with hand-written byte scanners (no regexps;
// they run on every interaction). Data goes out as at most one events.Finding of
// category "pii" whose spans, in Unicode code points, point at every match; the
// runner also uses those spans to redact stored interactions. PII in the response
// that the prompt did not contain is a possible leak (severity high); PII only
// typed by the user scores low or medium.
package pii
