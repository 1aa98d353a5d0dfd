// Package pki creates the development certificate authority and the
// per-workload X.509-SVIDs that `secureaudit up` and the tests use. In a
// cluster the certificates come from SPIRE or cert-manager's csi-driver-spiffe
// instead; the files written here have the same shape.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"secureaudit.dev/platform/identity"
)

// Validity of development certificates.
const (
	caValidity   = 7 * 24 * time.Hour
	leafValidity = 24 * time.Hour
)

// Files are the paths of one workload's credentials.
type Files struct {
	Cert string // PEM certificate chain (leaf only)
	Key  string // PEM PKCS#8 private key, mode 0600
	CA   string // PEM trust bundle
}

// Paths returns where Issue writes a workload's credentials under dir.
func Paths(dir, workload string) Files {
	return Files{
		Cert: filepath.Join(dir, workload+".crt"),
		Key:  filepath.Join(dir, workload+".key"),
		CA:   filepath.Join(dir, "ca.crt"),
	}
}

// CA is a development certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA creates a self-signed CA for the trust domain.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"SecureAudit development"}, CommonName: "SecureAudit development CA"},
		URIs:                  []*url.URL{identity.Domain().ID().URL()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// CertPEM returns the CA certificate in PEM form.
func (ca *CA) CertPEM() []byte { return ca.pem }

// Issue creates an X.509-SVID for the workload, valid for loopback
// connections, and returns the certificate and key in PEM form.
func (ca *CA) Issue(workload string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return ca.IssueValid(workload, now.Add(-time.Minute), now.Add(leafValidity))
}

// IssueValid is Issue with an explicit validity period, for certificates as
// short-lived as csi-driver-spiffe's (and for tests of rotation and expiry).
func (ca *CA) IssueValid(workload string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key for %s: %w", workload, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"SecureAudit development"}, CommonName: workload},
		URIs:         []*url.URL{identity.ID(workload).URL()},
		DNSNames:     []string{"localhost", workload},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate for %s: %w", workload, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key for %s: %w", workload, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WriteAll creates a new CA in dir and issues a certificate for each
// workload. Every file is written with mode 0600 in a directory of mode 0700.
func WriteAll(dir string, workloads []string, now time.Time) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create certificate directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict certificate directory: %w", err)
	}
	ca, err := NewCA(now)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, "ca.crt"), ca.pem); err != nil {
		return nil, err
	}
	for _, w := range workloads {
		certPEM, keyPEM, err := ca.Issue(w, now)
		if err != nil {
			return nil, err
		}
		p := Paths(dir, w)
		if err := writeFile(p.Cert, certPEM); err != nil {
			return nil, err
		}
		if err := writeFile(p.Key, keyPEM); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

func writeFile(path string, data []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n, nil
}
