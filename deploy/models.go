package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// Model registry: companies onboard OpenAI-compatible upstreams at run time. A
// registration names where the credentials are (an environment variable or a
// file, resolved by the process that calls the model), never the credentials.

// BucketModels is the JetStream KV bucket of registered models (key = model name).
const BucketModels = "MODELS"

// SchemaModel identifies the JSON of a model registration.
const SchemaModel = "stagegate.model.v1"

// Bounds of a model registration.
const (
	// MaxModelConcurrency bounds ModelSpec.MaxConcurrency.
	MaxModelConcurrency = 100000
	// MaxModelTimeout bounds ModelSpec.Timeout.
	MaxModelTimeout = 30 * time.Minute
	// MaxKeyFileBytes bounds an API key file.
	MaxKeyFileBytes = 16 << 10
	maxURLLen       = 2048
	maxPathLen      = 4096
)

// ModelSpec registers one OpenAI-compatible upstream.
type ModelSpec struct {
	Schema string `json:"schema,omitempty"`
	// Name of the model in Stagegate (rollout plans and X-Stagegate-Model use it).
	Name string `json:"name"`
	// BaseURL of the OpenAI-compatible API, ending in /v1.
	BaseURL string `json:"base_url"`
	// UpstreamModel is the model id sent upstream (default Name).
	UpstreamModel string `json:"upstream_model,omitempty"`
	// APIKeyEnv names an environment variable holding the API key.
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// APIKeyFile is the path of a file holding the API key (first line).
	APIKeyFile string `json:"api_key_file,omitempty"`
	// Timeout bounds one call (0: the gateway's upstream timeout).
	Timeout Duration `json:"timeout,omitempty"`
	// MaxConcurrency bounds concurrent calls to this model (0: unbounded).
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// AddedBy and AddedAt record the registration.
	AddedBy string    `json:"added_by,omitempty"`
	AddedAt time.Time `json:"added_at,omitzero"`
}

// Validate reports every problem at once.
func (m ModelSpec) Validate() error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: model %s: "+format, append([]any{ErrInvalid, m.Name}, a...)...))
	}
	if !events.ValidToken(m.Name) {
		add("name %q: want 1-64 letters, digits, '-' or '_'", m.Name)
	}
	if u, err := url.Parse(m.BaseURL); err != nil || len(m.BaseURL) > maxURLLen || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("base_url %q: want an http(s) URL such as https://api.example.com/v1", m.BaseURL)
	} else if u.User != nil {
		add("base_url: must not carry credentials; use api_key_env or api_key_file")
	}
	if len(m.UpstreamModel) > 256 || strings.ContainsAny(m.UpstreamModel, "\x00\r\n") {
		add("upstream_model: at most 256 bytes, one line")
	}
	if m.APIKeyEnv != "" && m.APIKeyFile != "" {
		add("set api_key_env or api_key_file, not both")
	}
	if m.APIKeyEnv != "" && !validEnvName(m.APIKeyEnv) {
		add("api_key_env %q: want an environment variable name (letters, digits, '_')", m.APIKeyEnv)
	}
	if len(m.APIKeyFile) > maxPathLen || strings.ContainsRune(m.APIKeyFile, 0) {
		add("api_key_file: at most %d bytes, no NUL", maxPathLen)
	}
	if m.Timeout < 0 || m.Timeout.D() > MaxModelTimeout {
		add("timeout %s: want 0 to %s", m.Timeout, MaxModelTimeout)
	}
	if m.MaxConcurrency < 0 || m.MaxConcurrency > MaxModelConcurrency {
		add("max_concurrency %d: want 0 (unbounded) to %d", m.MaxConcurrency, MaxModelConcurrency)
	}
	return errors.Join(errs...)
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 128 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Model returns the id to send upstream.
func (m ModelSpec) Model() string {
	if m.UpstreamModel != "" {
		return m.UpstreamModel
	}
	return m.Name
}

// APIKey resolves the credential reference: the environment variable (looked up
// with env; nil means os.Getenv) or the first line of the file. No reference
// means no key ("", nil).
func (m ModelSpec) APIKey(env func(string) string) (string, error) {
	switch {
	case m.APIKeyEnv != "":
		if env == nil {
			env = os.Getenv
		}
		k := env(m.APIKeyEnv)
		if k == "" {
			return "", fmt.Errorf("model %s: environment variable %s is empty or unset", m.Name, m.APIKeyEnv)
		}
		return k, nil
	case m.APIKeyFile != "":
		f, err := os.Open(m.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("model %s: api key file: %w", m.Name, err)
		}
		defer f.Close()
		raw, err := io.ReadAll(io.LimitReader(f, MaxKeyFileBytes+1))
		if err != nil {
			return "", fmt.Errorf("model %s: api key file %s: %w", m.Name, m.APIKeyFile, err)
		}
		if len(raw) > MaxKeyFileBytes {
			return "", fmt.Errorf("model %s: api key file %s is larger than %d bytes", m.Name, m.APIKeyFile, MaxKeyFileBytes)
		}
		line, _, _ := strings.Cut(string(raw), "\n")
		if line = strings.TrimSpace(line); line == "" {
			return "", fmt.Errorf("model %s: api key file %s is empty", m.Name, m.APIKeyFile)
		}
		return line, nil
	}
	return "", nil
}

// Models is the registry of onboarded models in the MODELS bucket.
type Models struct {
	kv  jetstream.KeyValue
	clk clock.Clock
}

// OpenModels creates (idempotently) and opens the MODELS bucket; replicas as for
// the streams (1 embedded, 3 on a cluster). A nil clk is the wall clock.
func OpenModels(ctx context.Context, js jetstream.JetStream, replicas int, clk clock.Clock) (*Models, error) {
	if js == nil {
		return nil, errors.New("models: a JetStream context is required")
	}
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketModels, History: 8, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure kv %s: %w", BucketModels, err)
	}
	return &Models{kv: kv, clk: clock.OrReal(clk)}, nil
}

// Put registers (or replaces) a model.
func (r *Models) Put(ctx context.Context, m ModelSpec) (ModelSpec, error) {
	if err := m.Validate(); err != nil {
		return ModelSpec{}, err
	}
	m.Schema = SchemaModel
	if m.AddedAt.IsZero() {
		m.AddedAt = r.clk.Now().UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ModelSpec{}, fmt.Errorf("encode model %s: %w", m.Name, err)
	}
	if _, err := r.kv.Put(ctx, m.Name, b); err != nil {
		return ModelSpec{}, fmt.Errorf("register model %s: %w", m.Name, err)
	}
	return m, nil
}

// Get returns a registered model, or ErrNotFound.
func (r *Models) Get(ctx context.Context, name string) (ModelSpec, error) {
	if !events.ValidToken(name) {
		return ModelSpec{}, fmt.Errorf("%w: model name %q", ErrInvalid, name)
	}
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ModelSpec{}, fmt.Errorf("model %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return ModelSpec{}, fmt.Errorf("read model %s: %w", name, err)
	}
	return decodeModel(e.Value())
}

// List returns every registered model, sorted by name.
func (r *Models) List(ctx context.Context) ([]ModelSpec, error) {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	seen := map[string]bool{}
	out := []ModelSpec{}
	for k := range lister.Keys() {
		if seen[k] {
			continue
		}
		seen[k] = true
		m, err := r.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a registration.
func (r *Models) Delete(ctx context.Context, name string) error {
	if _, err := r.Get(ctx, name); err != nil {
		return err
	}
	if err := r.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete model %s: %w", name, err)
	}
	return nil
}

// Watch streams every registration (entries in key order, then a nil entry once
// the current ones are delivered) and every later change, including deletes,
// until ctx ends or the watcher is stopped. Decode values with DecodeModel.
func (r *Models) Watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", BucketModels, err)
	}
	return w, nil
}

// DecodeModel reads a registration from the MODELS bucket, bounded and validated.
func DecodeModel(b []byte) (ModelSpec, error) {
	if len(b) > maxModelBytes {
		return ModelSpec{}, fmt.Errorf("model registration of %d bytes (max %d)", len(b), maxModelBytes)
	}
	return decodeModel(b)
}

// maxModelBytes bounds one registration's JSON.
const maxModelBytes = 64 << 10

func decodeModel(b []byte) (ModelSpec, error) {
	var m ModelSpec
	if err := json.Unmarshal(b, &m); err != nil {
		return ModelSpec{}, fmt.Errorf("decode model: %w", err)
	}
	if m.Schema != SchemaModel {
		return ModelSpec{}, fmt.Errorf("model registration schema %q, want %s", m.Schema, SchemaModel)
	}
	return m, m.Validate()
}
