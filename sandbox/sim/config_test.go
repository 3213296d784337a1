package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		wants []string // substrings of the joined error; none means valid
	}{
		{name: "zero value", cfg: Config{}},
		{name: "full", cfg: Config{Addr: "127.0.0.1:8089", Models: []string{"a", "b"}, FixedAnswer: "hi", Delay: time.Second, MaxBodyBytes: 1024}},
		{name: "bad addr", cfg: Config{Addr: "nope"}, wants: []string{`addr "nope"`}},
		{name: "empty model", cfg: Config{Models: []string{""}}, wants: []string{"models[0]", "empty"}},
		{name: "model with space", cfg: Config{Models: []string{"a b"}}, wants: []string{"whitespace"}},
		{name: "duplicate model", cfg: Config{Models: []string{"a", "a"}}, wants: []string{"models[1]", "twice"}},
		{name: "long model", cfg: Config{Models: []string{strings.Repeat("m", MaxModelIDBytes+1)}}, wants: []string{"at most 256"}},
		{name: "bad utf8 answer", cfg: Config{FixedAnswer: "\xff"}, wants: []string{"UTF-8"}},
		{name: "negative delay", cfg: Config{Delay: -time.Second}, wants: []string{"delay"}},
		{name: "huge delay", cfg: Config{Delay: MaxDuration + 1}, wants: []string{"delay"}},
		{name: "negative body", cfg: Config{MaxBodyBytes: -1}, wants: []string{"max body bytes"}},
		{
			name:  "every problem at once",
			cfg:   Config{Addr: "x", Models: []string{""}, Delay: -1, MaxBodyBytes: -1},
			wants: []string{"addr", "models[0]", "delay", "max body bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, nerr := New(tt.cfg); !errors.Is(nerr, ErrInvalidConfig) {
				t.Errorf("New() error = %v, want ErrInvalidConfig", nerr)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	models := []string{"m1"}
	s, err := New(Config{Models: models})
	if err != nil {
		t.Fatal(err)
	}
	models[0] = "changed"
	if s.cfg.Models[0] != "m1" {
		t.Error("New kept a reference to the caller's Models slice")
	}
	if s.cfg.Addr != DefaultAddr || s.cfg.MaxBodyBytes != DefaultMaxBodyBytes || s.clk == nil {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	if s.URL() != "" {
		t.Errorf("URL() before Start = %q, want empty", s.URL())
	}
}

func TestStartStop(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start = %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start = %v, want ErrAlreadyStarted", err)
	}
	u := s.URL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.HasSuffix(u, "/v1") {
		t.Fatalf("URL() = %q", u)
	}
	res, err := http.Get(strings.TrimSuffix(u, "/v1") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != `{"status":"ok"}` {
		t.Fatalf("healthz = %d %s", res.StatusCode, body)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
	if _, err := http.Get(u + "/models"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	// A stopped server can start again.
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStartBadAddr(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	busy := strings.TrimPrefix(strings.TrimSuffix(s.URL(), "/v1"), "http://")
	s2, err := New(Config{Addr: busy})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err == nil {
		s2.Stop(context.Background())
		t.Fatalf("Start on busy address %s succeeded", busy)
	}
}
