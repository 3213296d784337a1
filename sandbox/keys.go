package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
)

// Pilot API keys created through the admin API. A key is "sg_live_" and 32
// base32 characters (160 random bits); the incident store keeps only its
// SHA-256, and the admin API shows the key once, in the answer that created it.
// The gateway's key table — the configuration's keys plus the active stored
// ones — is rebuilt at once after a change made here, and every
// gateway.key_refresh when the keys version in the store changed (a change made
// through another process's admin API).

// Defaults and bounds of API keys.
const (
	// APIKeyPrefix starts every generated key, so secret scanners and people
	// recognise one.
	APIKeyPrefix = "sg_live_"
	// DefaultKeyRefresh is how often the store is checked for key changes.
	DefaultKeyRefresh = 5 * time.Second
	// apiKeyRandomBytes is the secret part of a key (160 bits).
	apiKeyRandomBytes = 20
	// keyIDRandomBytes is the random part of a key id.
	keyIDRandomBytes = 8
	// keyHintLen is how much of the secret part the stored prefix shows.
	keyHintLen = 4
	// maxKeyBody bounds the JSON of a key request.
	maxKeyBody = 16 << 10
	// defaultKeyActor names who acted when a request does not say.
	defaultKeyActor = "admin-token"
)

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newAPIKey returns a fresh key, its id and its display prefix.
func newAPIKey() (key, id, prefix string, err error) {
	var secret [apiKeyRandomBytes]byte
	var idb [keyIDRandomBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", "", fmt.Errorf("generate key: %w", err)
	}
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", "", fmt.Errorf("generate key id: %w", err)
	}
	body := strings.ToLower(keyEncoding.EncodeToString(secret[:]))
	return APIKeyPrefix + body, "key_" + strings.ToLower(keyEncoding.EncodeToString(idb[:])), APIKeyPrefix + body[:keyHintLen], nil
}

// keyTable keeps the gateway's key table current.
type keyTable struct {
	s *Sandbox

	mu      sync.Mutex // serialises rebuilds
	version incidents.KeysVersion
	loaded  bool
	failing bool // the last refresh failed (logged once)

	size   atomic.Int64
	stored atomic.Int64
	poll   poller
}

// build returns the key table: configured keys, then active stored keys of
// configured trials (a stored key whose hash a configured key has is ignored).
func (k *keyTable) build(ctx context.Context) (*gateway.Keys, incidents.KeysVersion, int, error) {
	s := k.s
	v, err := s.store.KeysVersion(ctx)
	if err != nil {
		return nil, v, 0, err
	}
	byHash := make(map[string]gateway.Principal, len(s.cfg.Keys)+int(v.Count))
	for _, kc := range s.cfg.Keys {
		byHash[strings.ToLower(kc.SHA256)] = gateway.Principal{KeyID: kc.Name, KeyName: kc.Name, Trial: kc.Trial, Tenant: kc.Tenant, Cohort: kc.Cohort, Attributes: kc.Attributes}
	}
	stored, err := s.store.APIKeys(ctx, incidents.KeyFilter{})
	if err != nil {
		return nil, v, 0, err
	}
	trials := s.trialIDs()
	n := 0
	for _, sk := range stored {
		if _, dup := byHash[sk.Hash]; dup || !trials[sk.Trial] {
			continue
		}
		byHash[sk.Hash] = gateway.Principal{KeyID: sk.ID, KeyName: sk.Name, Trial: sk.Trial, Tenant: sk.Tenant, Cohort: sk.Cohort, Attributes: sk.Attributes}
		n++
	}
	keys, err := gateway.NewKeys(byHash)
	return keys, v, n, err
}

// refresh rebuilds the table when the store's keys changed (always when force)
// and hands it to the gateway; nil (no gateway here) does nothing.
func (k *keyTable) refresh(ctx context.Context, force bool) error {
	if k == nil { // no gateway in this process (a role without it)
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !force && k.loaded {
		v, err := k.s.store.KeysVersion(ctx)
		if err != nil {
			return err
		}
		if v == k.version {
			return nil
		}
	}
	keys, v, n, err := k.build(ctx)
	if err != nil {
		return err
	}
	if gw := k.s.gw; gw != nil {
		if err := gw.SetKeys(keys); err != nil {
			return err
		}
	}
	k.version, k.loaded = v, true
	k.size.Store(int64(keys.Len()))
	k.stored.Store(int64(n))
	return nil
}

// initial builds the first table, before the gateway exists.
func (k *keyTable) initial(ctx context.Context) (*gateway.Keys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, v, n, err := k.build(ctx)
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	k.version, k.loaded = v, true
	k.size.Store(int64(keys.Len()))
	k.stored.Store(int64(n))
	return keys, nil
}

// start polls the store every interval until halt.
func (k *keyTable) start(interval time.Duration) {
	if interval <= 0 {
		interval = DefaultKeyRefresh
	}
	k.poll.start(interval, DefaultKeyRefresh, func() {
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		defer cancel()
		k.noteRefresh(k.refresh(ctx, false))
	})
}

// noteRefresh logs a refresh failure once, and the recovery.
func (k *keyTable) noteRefresh(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case err != nil && !k.failing:
		k.failing = true
		k.s.log.Warn("api keys not refreshed; the gateway keeps its current table", "err", err)
	case err == nil && k.failing:
		k.failing = false
		k.s.log.Info("api keys refreshed again")
	}
}

func (k *keyTable) halt() {
	if k != nil {
		k.poll.halt()
	}
}

// trialIDs are the trials this sandbox serves: configured, and applied
// through the admin API and in service here.
func (s *Sandbox) trialIDs() map[string]bool {
	out := make(map[string]bool, len(s.cfg.Trials))
	for _, t := range s.cfg.Trials {
		out[t.ID] = true
	}
	for _, id := range s.live.ids() {
		out[id] = true
	}
	return out
}

// knownTrial reports whether id is configured, in service here, or applied
// (stored) — a process without a gateway, such as the console role, knows
// applied trials only from the store.
func (s *Sandbox) knownTrial(ctx context.Context, id string) bool {
	if s.trialIDs()[id] {
		return true
	}
	_, err := s.store.TrialRevision(ctx, id, 0)
	return err == nil
}

// keyRoutes serves the key endpoints of the admin API.
func (a *adminServer) keyRoutes(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/keys", a.auth(a.createKey))
	mux.Handle("GET /api/v1/keys", a.auth(a.listKeys))
	mux.Handle("GET /api/v1/keys/{id}", a.auth(a.getKey))
	mux.Handle("POST /api/v1/keys/{id}/revoke", a.auth(a.revokeKey))
}

// keyCreateRequest is the body of POST /api/v1/keys.
type keyCreateRequest struct {
	Trial      string            `json:"trial"`
	Tenant     string            `json:"tenant"`
	Cohort     string            `json:"cohort"`
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes"`
	Actor      string            `json:"actor"`
}

// keyCreated is the answer to POST /api/v1/keys: the only time the key is shown.
type keyCreated struct {
	Key    string           `json:"key"`
	APIKey incidents.APIKey `json:"api_key"`
	Notice string           `json:"notice"`
}

const keyShownOnce = "Store this key now: it is shown only once. Stagegate keeps only its SHA-256 hash."

func (a *adminServer) createKey(w http.ResponseWriter, r *http.Request) {
	var req keyCreateRequest
	if !decodeJSONBody(w, r, &req, maxKeyBody) {
		return
	}
	if req.Actor == "" {
		req.Actor = defaultKeyActor
	}
	if !a.s.knownTrial(r.Context(), req.Trial) {
		apiError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("trial %q is neither configured nor applied", req.Trial))
		return
	}
	key, id, prefix, err := newAPIKey()
	if err != nil {
		a.internal(w, "generate key", err)
		return
	}
	stored, err := a.s.store.CreateAPIKey(r.Context(), incidents.APIKey{
		ID: id, Name: req.Name, Prefix: prefix, Hash: gateway.HashKey(key), Trial: req.Trial, Tenant: req.Tenant,
		Cohort: req.Cohort, Attributes: req.Attributes, CreatedBy: req.Actor,
	})
	switch {
	case errors.Is(err, incidents.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		a.internal(w, "store key", err)
		return
	}
	if err := a.s.keys.refresh(r.Context(), true); err != nil {
		// Stored: the next refresh picks it up.
		a.log.Warn("api key stored but the gateway's table not yet rebuilt", "key", id, "err", err)
	}
	a.log.Info("api key created", "key", id, "prefix", prefix, "trial", req.Trial, "tenant", req.Tenant, "actor", req.Actor)
	writeJSON(w, http.StatusOK, keyCreated{Key: key, APIKey: stored, Notice: keyShownOnce})
}

func (a *adminServer) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list, err := a.s.store.APIKeys(r.Context(), incidents.KeyFilter{Trial: q.Get("trial"), Revoked: q.Get("revoked") == "true"})
	if err != nil {
		a.internal(w, "list keys", err)
		return
	}
	if list == nil {
		list = []incidents.APIKey{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": list, "count": len(list), "config_keys": len(a.s.cfg.Keys)})
}

func (a *adminServer) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.s.store.APIKey(r.Context(), r.PathValue("id"))
	if errors.Is(err, incidents.ErrNotFound) {
		apiError(w, http.StatusNotFound, "not_found", "no key "+r.PathValue("id"))
		return
	}
	if err != nil {
		a.internal(w, "get key", err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// keyRevokeRequest is the body of POST /api/v1/keys/{id}/revoke.
type keyRevokeRequest struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

func (a *adminServer) revokeKey(w http.ResponseWriter, r *http.Request) {
	var req keyRevokeRequest
	if r.ContentLength != 0 && !decodeJSONBody(w, r, &req, maxKeyBody) {
		return
	}
	if req.Actor == "" {
		req.Actor = defaultKeyActor
	}
	k, err := a.s.store.RevokeAPIKey(r.Context(), r.PathValue("id"), req.Actor, req.Reason)
	switch {
	case errors.Is(err, incidents.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", "no key "+r.PathValue("id"))
		return
	case errors.Is(err, incidents.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		a.internal(w, "revoke key", err)
		return
	}
	if err := a.s.keys.refresh(r.Context(), true); err != nil {
		a.log.Warn("api key revoked but the gateway's table not yet rebuilt", "key", k.ID, "err", err)
	}
	a.log.Info("api key revoked", "key", k.ID, "trial", k.Trial, "actor", req.Actor)
	writeJSON(w, http.StatusOK, k)
}

// decodeJSONBody decodes one bounded JSON object into v, unknown fields and
// trailing data refused; it answers the client itself on failure.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", limit))
			return false
		}
		apiError(w, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON body")
		return false
	}
	return true
}
