// Package console is the reviewers' console and the review API, served on the
// sandbox's admin address.
//
// Data comes in from people: a browser (server-rendered html/template pages,
// forms posted with a per-session CSRF token, a little progressive JavaScript
// for keyboard shortcuts; no framework, no build step) and API clients (JSON
// under /api/v1/review/, with a session or the admin bearer token). Every
// request is authenticated (password sessions in HttpOnly, SameSite=Strict
// cookies; a trusted reverse-proxy header when configured; the admin token as
// the admin role) and scoped to the trials the user may see. Data goes out to
// the incident store (workflow actions, comments, labels, all audited) and back
// to the user as pages, JSON and trial reports (HTML, JSON, CSV).
package console
