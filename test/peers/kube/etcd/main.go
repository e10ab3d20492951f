// A single-member etcd for tests, on loopback, through go.etcd.io/etcd/server/v3/embed.
//
// Why embed rather than the upstream main (go.etcd.io/etcd/v3, or etcdmain.Main): the upstream
// main drags in the gRPC proxy, the gateway and etcdctl's module, and takes a hundred flags that
// a test never sets; this file takes the handful a test needs, refuses anything not on loopback,
// and exits cleanly on SIGTERM, so the build stays small and the behaviour stays obvious.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("name", "default", "member name")
	dataDir := flag.String("data-dir", "", "data directory (required)")
	listenClient := flag.String("listen-client-urls", "http://127.0.0.1:2379", "comma-separated client URLs to listen on")
	advertiseClient := flag.String("advertise-client-urls", "", "client URLs to advertise (default: the listen URLs)")
	listenPeer := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "comma-separated peer URLs to listen on")
	quotaBytes := flag.Int64("quota-backend-bytes", 256<<20, "backend size quota in bytes")
	unsafeNoFsync := flag.Bool("unsafe-no-fsync", true, "skip fsync: faster, and a test's data need not survive a crash")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	startTimeout := flag.Duration("start-timeout", 60*time.Second, "give up when the member is not ready by then")
	flag.Parse()
	if *dataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	var err error
	if cfg.ListenClientUrls, err = loopbackURLs("--listen-client-urls", *listenClient); err != nil {
		return err
	}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	if *advertiseClient != "" {
		if cfg.AdvertiseClientUrls, err = loopbackURLs("--advertise-client-urls", *advertiseClient); err != nil {
			return err
		}
	}
	if cfg.ListenPeerUrls, err = loopbackURLs("--listen-peer-urls", *listenPeer); err != nil {
		return err
	}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.QuotaBackendBytes = *quotaBytes
	cfg.UnsafeNoFsync = *unsafeNoFsync
	cfg.LogLevel = *logLevel
	cfg.LogOutputs = []string{"stderr"}
	// No metrics listener beyond the client URLs: nothing listens anywhere a test did not ask.
	cfg.ListenMetricsUrls = nil

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcd: ready, serving clients on", *listenClient)
	case err := <-e.Err():
		return err
	case <-time.After(*startTimeout):
		e.Server.Stop()
		return fmt.Errorf("not ready after %s", *startTimeout)
	case <-signals:
		return nil
	}
	select {
	case err := <-e.Err():
		return err
	case <-signals:
		return nil
	}
}

// loopbackURLs parses a comma-separated URL list and refuses any host that is not a loopback IP.
func loopbackURLs(flagName, list string) ([]url.URL, error) {
	var urls []url.URL
	for _, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%s: %q is not a loopback IP address", flagName, u.Host)
		}
		urls = append(urls, *u)
	}
	return urls, nil
}
