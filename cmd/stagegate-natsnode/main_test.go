package main

import (
	"io"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestParseAndOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ok", []string{"--name", "n1", "--cluster", "127.0.0.1:6222", "--store-dir", "/tmp/x",
			"--routes", "nats-route://127.0.0.1:6223, nats-route://127.0.0.1:6224"}, ""},
		{"missing required", []string{"--name", "n1"}, "required"},
		{"bad max store", []string{"--name", "n1", "--cluster", "127.0.0.1:6222", "--store-dir", "d", "--max-store", "0"}, "max-store"},
		{"extra args", []string{"--name", "n1", "--cluster", "127.0.0.1:6222", "--store-dir", "d", "x"}, "unexpected"},
		{"bad cluster addr", []string{"--name", "n1", "--cluster", "6222", "--store-dir", "d"}, "--cluster"},
		{"bad port", []string{"--name", "n1", "--cluster", "127.0.0.1:99999", "--store-dir", "d"}, "bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(tt.args, io.Discard)
			var opts *server.Options
			if err == nil {
				opts, err = c.options()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.ServerName != "n1" || !opts.JetStream || opts.Cluster.Port != 6222 || len(opts.Routes) != 2 || opts.Port != server.RANDOM_PORT {
				t.Errorf("options %+v", opts)
			}
		})
	}
}
