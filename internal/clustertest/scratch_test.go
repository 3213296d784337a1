//go:build cluster

package clustertest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
)

func TestScratchKV(t *testing.T) {
	dir := t.TempDir()
	_, natsnodeBin := buildBinaries(t, dir)
	cport := freePorts(t, 3)
	var urls []string
	var nodes []*proc
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cport[j]))
			}
		}
		nodes = append(nodes, startProc(t, dir, fmt.Sprintf("nats-%d", i+1), natsnodeBin, "--name", fmt.Sprintf("n%d", i+1),
			"--cluster", fmt.Sprintf("127.0.0.1:%d", cport[i]), "--routes", strings.Join(routes, ","),
			"--store-dir", filepath.Join(dir, fmt.Sprintf("js-%d", i+1))))
	}
	for _, n := range nodes {
		urls = append(urls, "nats://"+field(n.waitLine(t, "ready", 30*time.Second), "ready"))
	}
	nc, _ := nats.Connect(strings.Join(urls, ","))
	js, _ := jetstream.New(nc)
	start := time.Now()
	testutil.WaitFor(t, time.Minute, "ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := events.EnsureStreams(ctx, js, events.StreamOptions{Replicas: 3})
		t.Logf("%s ensure: %v", time.Since(start), err)
		return err == nil
	})
	var wg sync.WaitGroup
	for i := range 7 {
		wg.Go(func() {
			nc, _ := nats.Connect(urls[i%3])
			js, _ := jetstream.New(nc)
			s := time.Now()
			_, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "MODELS", History: 8, Storage: jetstream.FileStorage, Replicas: 3})
			t.Logf("%d: %s %v", i, time.Since(s), err)
		})
	}
	wg.Wait()
}
