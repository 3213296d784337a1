// Command stagegate-natsnode runs one nats-server with JetStream as a node of a
// cluster, built from the nats-server module pinned in go.mod. The cluster test
// (make cluster-test) starts three as separate processes on loopback ports and
// kills one; it is not for production, where the official nats-server binary,
// container image or Helm chart runs the cluster (deploy/).
//
// When the node accepts clients it prints one line, "ready <client URL>", on
// stdout; it stops on SIGINT or SIGTERM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults of the flags.
const (
	defaultCluster  = "stagegate"
	defaultMaxStore = 1 << 30
	readyTimeout    = 30 * time.Second
)

// config is the node's settings.
type config struct {
	name, client, cluster, clusterName, storeDir string
	routes                                       []string
	maxStore                                     int64
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "stagegate-natsnode:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	ns.ConfigureLogger()
	go ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		return fmt.Errorf("node %s not ready within %s", c.name, readyTimeout)
	}
	fmt.Fprintln(stdout, "ready", ns.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// parse reads and checks the flags, reporting every problem at once.
func parse(args []string, stderr io.Writer) (config, error) {
	var (
		c      config
		routes string
	)
	fs := flag.NewFlagSet("stagegate-natsnode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.name, "name", "", "server name, unique in the cluster (required)")
	fs.StringVar(&c.client, "addr", "127.0.0.1:0", "client listen address (port 0: any free port)")
	fs.StringVar(&c.cluster, "cluster", "", "cluster (route) listen address host:port (required)")
	fs.StringVar(&c.clusterName, "cluster-name", defaultCluster, "cluster name")
	fs.StringVar(&routes, "routes", "", "the other nodes' route URLs, comma-separated (nats-route://host:port)")
	fs.StringVar(&c.storeDir, "store-dir", "", "JetStream storage folder (required)")
	fs.Int64Var(&c.maxStore, "max-store", defaultMaxStore, "JetStream file storage limit in bytes")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if c.name == "" || c.cluster == "" || c.storeDir == "" {
		errs = append(errs, errors.New("--name, --cluster and --store-dir are required"))
	}
	for _, r := range strings.Split(routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.routes = append(c.routes, r)
		}
	}
	if c.maxStore <= 0 {
		errs = append(errs, fmt.Errorf("--max-store %d: must be positive", c.maxStore))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %v", fs.Args()))
	}
	return c, errors.Join(errs...)
}

// options are the nats-server options of c.
func (c config) options() (*server.Options, error) {
	host, port, err := splitHostPort("--addr", c.client)
	if err != nil {
		return nil, err
	}
	chost, cport, err := splitHostPort("--cluster", c.cluster)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: c.name, Host: host, Port: port,
		JetStream: true, StoreDir: c.storeDir, JetStreamMaxStore: c.maxStore, JetStreamMaxMemory: 64 << 20,
		NoSigs:  true, // this process handles signals
		Cluster: server.ClusterOpts{Name: c.clusterName, Host: chost, Port: cport},
	}
	if len(c.routes) > 0 {
		opts.Routes = server.RoutesFromStr(strings.Join(c.routes, ","))
		if len(opts.Routes) != len(c.routes) {
			return nil, fmt.Errorf("--routes %q: not nats-route://host:port URLs", strings.Join(c.routes, ","))
		}
	}
	return opts, nil
}

// splitHostPort parses host:port (port 0 picks a free one).
func splitHostPort(flagName, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: bad port", flagName, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}
