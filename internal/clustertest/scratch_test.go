//go:build cluster

package clustertest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestScratchWatch(t *testing.T) {
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
	var kv jetstream.KeyValue
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "W", Replicas: 3})
		cancel()
		if err == nil {
			break
		}
	}
	// watchers connected to each node
	type obs struct{ got chan string }
	var ws []chan string
	for i := range 3 {
		wnc, _ := nats.Connect(urls[i]+","+strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		wjs, _ := jetstream.New(wnc)
		wkv, _ := wjs.KeyValue(context.Background(), "W")
		w, err := wkv.WatchAll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan string, 100)
		go func() {
			for e := range w.Updates() {
				if e != nil {
					ch <- string(e.Value())
				}
			}
		}()
		ws = append(ws, ch)
	}
	si, _ := js.Stream(context.Background(), "KV_W")
	info, _ := si.Info(context.Background())
	t.Logf("leader %s", info.Cluster.Leader)
	nodes[2].kill(t)
	for k := range 25 {
		v := fmt.Sprint(k)
		start := time.Now()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := kv.Put(ctx, "k", []byte(v))
			cancel()
			if err == nil {
				break
			}
		}
		var lat []string
		for i, ch := range ws {
			deadline := time.After(8 * time.Second)
		loop:
			for {
				select {
				case got := <-ch:
					if got == v {
						lat = append(lat, fmt.Sprintf("w%d:%s", i, time.Since(start).Round(time.Millisecond)))
						break loop
					}
				case <-deadline:
					lat = append(lat, fmt.Sprintf("w%d:timeout", i))
					break loop
				}
			}
		}
		t.Logf("%d %v", k, lat)
		time.Sleep(time.Second)
	}
}
