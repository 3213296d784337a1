package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"testing/fstest" // an in-memory fs.FS from the standard library; no test code

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// fetchBundle downloads the bundle unless the server says it is unchanged
// (304 for our ETag: nil FS). A bundle becomes a policy root: its modules at
// their paths and its data as one data.json, so it is loaded, hashed and
// checked exactly as a folder is.
func (r *Reloader) fetchBundle(ctx context.Context) (fs.FS, string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.BundleTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.BundleURL, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBundle, err)
	}
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	req.Header.Set("Accept", "application/gzip, application/vnd.openpolicyagent.bundles")
	start := r.clk.Now()
	resp, err := r.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("%w: %s: no answer within %s", ErrBundle, r.cfg.BundleURL, r.cfg.BundleTimeout)
		}
		return nil, "", fmt.Errorf("%w: %s: %w", ErrBundle, r.cfg.BundleURL, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, r.etag, nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, "", fmt.Errorf("%w: %s: HTTP %s", ErrBundle, r.cfg.BundleURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.cfg.MaxBundleBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("%w: %s: download not finished within %s", ErrBundle, r.cfg.BundleURL, r.cfg.BundleTimeout)
		}
		return nil, "", fmt.Errorf("%w: %s: %w", ErrBundle, r.cfg.BundleURL, err)
	}
	if int64(len(body)) > r.cfg.MaxBundleBytes {
		return nil, "", fmt.Errorf("%w: %s: larger than %d bytes", ErrBundle, r.cfg.BundleURL, r.cfg.MaxBundleBytes)
	}
	fsys, err := BundleFS(body)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", ErrBundle, r.cfg.BundleURL, err)
	}
	r.log.Debug("policy bundle downloaded", "url", r.cfg.BundleURL, "bytes", len(body), "took", r.clk.Now().Sub(start))
	return fsys, resp.Header.Get("ETag"), nil
}

// BundleFS reads an OPA bundle (.tar.gz) with OPA's bundle reader and returns
// it as a policy root for Config.FS: every module at its path, the merged data
// as data.json at the root. Signature verification is not configured: serve
// bundles over HTTPS from a server you trust.
func BundleFS(tarball []byte) (fs.FS, error) {
	b, err := bundle.NewReader(bytes.NewReader(tarball)).
		WithSkipBundleVerification(true).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(MaxPolicyFileBytes).
		Read()
	if err != nil {
		return nil, fmt.Errorf("not a readable bundle: %w", err)
	}
	if len(b.WasmModules) > 0 || len(b.PlanModules) > 0 {
		return nil, fmt.Errorf("bundle holds wasm or plan modules; only Rego modules and data are supported")
	}
	m := fstest.MapFS{}
	total := 0
	for _, mf := range b.Modules {
		p := strings.TrimPrefix(path.Clean("/"+mf.Path), "/")
		if p == "" || !fs.ValidPath(p) {
			return nil, fmt.Errorf("bundle module path %q is not valid", mf.Path)
		}
		if _, dup := m[p]; dup {
			return nil, fmt.Errorf("bundle holds module %s twice", p)
		}
		total += len(mf.Raw)
		m[p] = &fstest.MapFile{Data: mf.Raw, Mode: 0o444}
	}
	if len(b.Data) > 0 {
		raw, err := json.Marshal(b.Data)
		if err != nil {
			return nil, fmt.Errorf("bundle data: %w", err)
		}
		if _, dup := m["data.json"]; dup {
			return nil, fmt.Errorf("bundle data and a module both claim data.json")
		}
		total += len(raw)
		m["data.json"] = &fstest.MapFile{Data: raw, Mode: 0o444}
	}
	if total > MaxPolicyTotalBytes {
		return nil, fmt.Errorf("bundle policy files exceed %d bytes in total", MaxPolicyTotalBytes)
	}
	return m, nil
}
