// Package natsserver runs a NATS server with JetStream inside the process,
// for examples, tests and demos that should need nothing installed.
//
//	srv, err := natsserver.Start(natsserver.Options{Dir: dir})
//	if err != nil { ... }
//	defer srv.Shutdown()
//	bus, err := gossip.NewEventBus(&gossip.Config{Driver: srv.URL()})
//
// It is the real nats-server (github.com/nats-io/nats-server/v2), listening
// on loopback only.
package natsserver

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server. The zero value is a JetStream
// server on a free loopback port storing in a new temporary directory.
type Options struct {
	// Dir is the JetStream store directory. Empty: a temporary directory,
	// removed by Shutdown.
	Dir string
	// Port is the client port; 0 picks a free one.
	Port int

	// Name names the server (required in a cluster).
	Name string
	// Cluster, when not empty, names the cluster the server joins;
	// ClusterPort is its route port (0: a free one) and Routes the route
	// URLs of the other members ("nats-route://127.0.0.1:6222").
	Cluster     string
	ClusterPort int
	Routes      []string

	// ReadyTimeout bounds the wait for the server to accept clients
	// (default 10s).
	ReadyTimeout time.Duration

	// Configure, when set, edits the server's options before it starts:
	// users, tokens, NKeys, operators, TLS, limits.
	Configure func(*server.Options)
}

// Server is a running embedded server.
type Server struct {
	srv     *server.Server
	tempDir string
}

// Start starts a server and waits until it accepts clients.
func Start(o Options) (*Server, error) {
	s := &Server{}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "gossip-nats-*")
		if err != nil {
			return nil, fmt.Errorf("natsserver: store dir: %w", err)
		}
		o.Dir, s.tempDir = dir, dir
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       "127.0.0.1",
		Port:       cmp.Or(o.Port, server.RANDOM_PORT),
		JetStream:  true,
		StoreDir:   o.Dir,
		NoLog:      true,
		NoSigs:     true,
	}
	if o.Cluster != "" {
		opts.Cluster = server.ClusterOpts{Name: o.Cluster, Host: "127.0.0.1", Port: cmp.Or(o.ClusterPort, server.RANDOM_PORT)}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				s.cleanup()
				return nil, fmt.Errorf("natsserver: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if o.Configure != nil {
		o.Configure(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	s.srv = srv
	srv.Start()
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		s.Shutdown()
		return nil, errors.New("natsserver: server not ready for connections within " + timeout.String())
	}
	return s, nil
}

// URL is the client URL, "nats://127.0.0.1:<port>".
func (s *Server) URL() string { return s.srv.ClientURL() }

// Port is the client port.
func (s *Server) Port() int { return s.srv.Addr().(*net.TCPAddr).Port }

// Server is the nats-server itself, for what Options does not cover.
func (s *Server) Server() *server.Server { return s.srv }

// Shutdown stops the server and waits until it has; a temporary store
// directory is removed. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
		s.tempDir = ""
	}
}
