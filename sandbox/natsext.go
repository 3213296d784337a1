package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
)

// An external NATS (nats.url) instead of the embedded server: the connection
// reconnects forever, so an outage is a degraded period (interactions spooled,
// replayed afterwards), never a crash.
const (
	// natsReconnectWait is the pause between reconnect attempts.
	natsReconnectWait = 250 * time.Millisecond
	// natsStartTimeout bounds the wait for NATS and the streams at start.
	natsStartTimeout = time.Minute
)

// connectExternalNATS connects to cfg.URL and waits until the streams exist,
// creating them when missing.
func (s *Sandbox) connectExternalNATS(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	c := s.cfg.NATS
	opts := []nats.Option{
		nats.Name(s.natsClientName()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(natsReconnectWait),
		nats.RetryOnFailedConnect(true), // the bus may come up after us
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.log.Warn("nats disconnected; interactions go to the spool until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	opts = append(opts, c.tlsOptions()...) // roles.go
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(events.DefaultMaxPending))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := ensureStreamsPatiently(ctx, js, c.streamOptions(), natsStartTimeout); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// ensureStreamsPatiently retries the idempotent EnsureStreams until it
// succeeds, timeout passes or ctx ends.
func ensureStreamsPatiently(ctx context.Context, js jetstream.JetStream, o events.StreamOptions, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := time.NewTimer(natsReconnectWait)
	defer wait.Stop()
	for {
		actx, acancel := context.WithTimeout(ctx, monitorAttemptTimeout)
		err := ensureShared(actx, js, o) // roles.go
		acancel()
		if err == nil {
			return nil
		}
		wait.Reset(natsReconnectWait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats: streams not available within %s: %w", timeout, errors.Join(err, ctx.Err()))
		case <-wait.C:
		}
	}
}
