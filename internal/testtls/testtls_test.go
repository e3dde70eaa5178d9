package testtls

import (
	"crypto/tls"
	"io"
	"testing"
)

// A client trusting only the CA completes a mutual handshake with a server
// that requires a client certificate; one without a certificate does not.
func TestMutualHandshake(t *testing.T) {
	m := New(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	dial := func(certs []tls.Certificate) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: m.Pool, Certificates: certs, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 1))
		return err
	}
	if err := dial([]tls.Certificate{m.Client}); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	if err := dial(nil); err == nil {
		t.Fatal("without a client certificate the handshake succeeded")
	}
}
