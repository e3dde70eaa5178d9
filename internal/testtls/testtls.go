// Package testtls makes TLS material at test time: a private certificate
// authority, a server certificate for the loopback addresses and a client
// certificate, written as PEM files to a test's temporary directory. No key
// is ever committed; each test run has its own.
package testtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Material is a CA and the certificates it signed, as files and as parsed
// values.
type Material struct {
	// PEM files in a t.TempDir.
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
	// ClientName is the client certificate's common name (for servers that
	// map certificates to users).
	ClientName string
	// Pool holds the CA, for a tls.Config's RootCAs or ClientCAs.
	Pool *x509.CertPool
	// Server and Client are the key pairs.
	Server, Client tls.Certificate
}

// ServerConfig is a TLS config for a server presenting the server
// certificate and, when mutual, requiring a client certificate signed by
// the CA.
func (m *Material) ServerConfig(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{m.Server}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientCAs, c.ClientAuth = m.Pool, tls.RequireAndVerifyClientCert
	}
	return c
}

// New makes a fresh CA, a server certificate valid for 127.0.0.1, ::1 and
// localhost, and a client certificate with common name "gossip-test-client".
func New(t testing.TB) *Material {
	t.Helper()
	dir := t.TempDir()
	m := &Material{ClientName: "gossip-test-client", Pool: x509.NewCertPool()}

	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gossip test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testtls: CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testtls: CA: %v", err)
	}
	m.Pool.AddCert(ca)
	m.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) (certFile, keyFile string, pair tls.Certificate) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("testtls: %s: %v", cn, err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatalf("testtls: %s key: %v", cn, err)
		}
		certFile = writePEM(t, dir, cn+".pem", "CERTIFICATE", der)
		keyFile = writePEM(t, dir, cn+"-key.pem", "EC PRIVATE KEY", keyDER)
		pair, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("testtls: %s pair: %v", cn, err)
		}
		return certFile, keyFile, pair
	}
	m.ServerCertFile, m.ServerKeyFile, m.Server = leaf(2, "gossip-test-server", x509.ExtKeyUsageServerAuth, true)
	m.ClientCertFile, m.ClientKeyFile, m.Client = leaf(3, m.ClientName, x509.ExtKeyUsageClientAuth, false)
	return m
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testtls: key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testtls: %v", err)
	}
	return p
}
