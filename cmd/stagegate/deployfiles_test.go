package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/sandbox"
)

// deployDir holds the deployment files (systemd, compose, k8s).
const deployDir = "../../deploy"

// invocation is one stagegate command line found in a deployment file.
type invocation struct {
	file string
	args []string // after the binary: role, then flags
}

// TestDeployFiles: every YAML file in deploy/compose and deploy/k8s parses;
// every role runs in each of systemd, compose and k8s; every flag those files
// give stagegate exists in that command's --help; and the configuration files
// they ship load and validate.
func TestDeployFiles(t *testing.T) {
	var invs []invocation
	roles := map[string]map[string]bool{} // kind -> roles seen
	see := func(kind string, inv invocation) {
		invs = append(invs, inv)
		if roles[kind] == nil {
			roles[kind] = map[string]bool{}
		}
		roles[kind][inv.args[0]] = true
	}

	units, _ := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	if len(units) == 0 {
		t.Fatal("no systemd units")
	}
	for _, f := range units {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		args, ok := execStart(string(raw))
		if !ok {
			t.Errorf("%s: no ExecStart running stagegate", f)
			continue
		}
		see("systemd", invocation{file: f, args: args})
	}

	var docs []yamlDoc
	for _, pattern := range []string{"compose/*.yml", "compose/*.yaml", "k8s/*.yaml"} {
		files, _ := filepath.Glob(filepath.Join(deployDir, pattern))
		for _, f := range files {
			docs = append(docs, parseYAML(t, f)...)
		}
	}
	for _, d := range docs {
		switch {
		case strings.HasSuffix(d.file, "docker-compose.yml"):
			services, _ := d.v["services"].(map[string]any)
			for _, svc := range services {
				cmd := strings_(svc.(map[string]any)["command"])
				if len(cmd) > 0 && slices.Contains(append([]string{"up"}, sandbox.Roles...), cmd[0]) {
					see("compose", invocation{file: d.file, args: cmd})
				}
			}
		case d.v["kind"] == "Deployment":
			spec := dig(d.v, "spec", "template", "spec")
			for _, c := range spec["containers"].([]any) {
				args := strings_(c.(map[string]any)["args"])
				if len(args) > 0 {
					see("k8s", invocation{file: d.file, args: args})
				}
			}
		}
	}
	for _, kind := range []string{"systemd", "compose", "k8s"} {
		for _, r := range sandbox.Roles {
			if !roles[kind][r] {
				t.Errorf("%s: no %s", kind, r)
			}
		}
	}

	helps := map[string]string{}
	for _, inv := range invs {
		role := inv.args[0]
		if _, ok := helps[role]; !ok {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{role, "--help"}, &out, &errOut); code != 0 {
				t.Fatalf("stagegate %s --help: exit %d", role, code)
			}
			helps[role] = out.String() + errOut.String()
		}
		for _, flag := range flagNames(inv.args[1:]) {
			if !strings.Contains(helps[role], "\n  -"+flag+" ") && !strings.Contains(helps[role], "\n  -"+flag+"\n") {
				t.Errorf("%s: stagegate %s has no flag --%s", inv.file, role, flag)
			}
		}
	}
	if len(invs) < 12 {
		t.Errorf("found %d stagegate command lines, want at least 12 (4 roles × 3 kinds)", len(invs))
	}

	// The shipped configurations load and validate.
	configs := map[string][]byte{}
	raw, err := os.ReadFile(filepath.Join(deployDir, "compose", "stagegate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	configs["compose/stagegate.yaml"] = raw
	for _, d := range docs {
		if d.v["kind"] == "ConfigMap" {
			data, _ := d.v["data"].(map[string]any)
			configs[d.file+" ConfigMap"] = []byte(data["stagegate.yaml"].(string))
		}
	}
	if len(configs) != 2 {
		t.Errorf("found %d configurations, want 2", len(configs))
	}
	for name, raw := range configs {
		cfg, err := sandbox.Parse(name, raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		cfg.NATS.URL = "nats://127.0.0.1:4222" // as --nats sets it
		if err := cfg.WithDefaults().Validate(); err != nil {
			t.Errorf("%s does not validate: %v", name, err)
		}
		if cfg.NATS.Replicas != 3 {
			t.Errorf("%s: nats.replicas %d, want 3 on a cluster", name, cfg.NATS.Replicas)
		}
	}
}

// yamlDoc is one document of a YAML file.
type yamlDoc struct {
	file string
	v    map[string]any
}

// parseYAML decodes every document of a file, failing the test on a syntax error.
func parseYAML(t *testing.T, file string) []yamlDoc {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var out []yamlDoc
	for {
		var v map[string]any
		err := dec.Decode(&v)
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: %v", file, err)
		}
		if v != nil {
			out = append(out, yamlDoc{file: file, v: v})
		}
	}
	if len(out) == 0 {
		t.Errorf("%s: no YAML documents", file)
	}
	return out
}

// execStart returns the arguments after the stagegate binary in a unit's
// ExecStart (continuation lines joined).
func execStart(unit string) ([]string, bool) {
	joined := strings.ReplaceAll(unit, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart=")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || filepath.Base(f[0]) != "stagegate" {
			return nil, false
		}
		return f[1:], true
	}
	return nil, false
}

// flagNames lists the flags (without dashes or values) in args.
func flagNames(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		out = append(out, name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// strings_ converts a YAML list of scalars to strings.
func strings_(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// dig walks nested YAML maps.
func dig(v map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		v, _ = v[k].(map[string]any)
	}
	return v
}

func TestExecStartAndFlagNames(t *testing.T) {
	args, ok := execStart("[Service]\nExecStart=/usr/local/bin/stagegate gateway --config /x \\\n  --nats ${N} --db=${D}\n")
	if !ok || strings.Join(args, " ") != "gateway --config /x --nats ${N} --db=${D}" {
		t.Fatalf("execStart = %q, %v", args, ok)
	}
	if got := flagNames(args[1:]); strings.Join(got, ",") != "config,db,nats" {
		t.Errorf("flagNames = %v", got)
	}
	if _, ok := execStart("ExecStart=/bin/true\n"); ok {
		t.Error("a unit not running stagegate was accepted")
	}
}
