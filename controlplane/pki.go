package main

// Throw-away PKI for one control-plane run: a CA, the apiserver serving
// certificate, one admin client certificate and the service-account signing
// key. ECDSA P-256 everywhere because generating it takes microseconds,
// whereas RSA-2048 costs noticeable start-up time on a small machine.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// pkiFiles are the paths the components are pointed at.
type pkiFiles struct {
	caCert, serverCert, serverKey, adminCert, adminKey, saKey, saPub string
}

func newKeyPair(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour) // tolerate small clock skew
	tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	signerCert, signerKey := tmpl, key // self-signed unless a parent is given
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key, der: der}, nil
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func (kp *keyPair) write(certPath, keyPath string) error {
	if err := writePEM(certPath, "CERTIFICATE", kp.der); err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(kp.key)
	if err != nil {
		return err
	}
	return writePEM(keyPath, "EC PRIVATE KEY", keyDER)
}

// writePKI creates every key and certificate under dir/pki.
func writePKI(dir string) (pkiFiles, error) {
	d := filepath.Join(dir, "pki")
	f := pkiFiles{
		caCert:     filepath.Join(d, "ca.crt"),
		serverCert: filepath.Join(d, "apiserver.crt"),
		serverKey:  filepath.Join(d, "apiserver.key"),
		adminCert:  filepath.Join(d, "admin.crt"),
		adminKey:   filepath.Join(d, "admin.key"),
		saKey:      filepath.Join(d, "sa.key"),
		saPub:      filepath.Join(d, "sa.pub"),
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return f, err
	}
	ca, err := newKeyPair(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "fluxd-controlplane-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
	if err != nil {
		return f, err
	}
	server, err := newKeyPair(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// 10.0.0.1 is the "kubernetes" Service IP of --service-cluster-ip-range.
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}, ca)
	if err != nil {
		return f, err
	}
	// O=system:masters is bound to cluster-admin by the bootstrap RBAC policy,
	// so one client certificate serves the tests, kcm, scheduler and simulator.
	admin, err := newKeyPair(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "fluxd-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return f, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	for _, step := range []func() error{
		func() error { return writePEM(f.caCert, "CERTIFICATE", ca.der) },
		func() error { return server.write(f.serverCert, f.serverKey) },
		func() error { return admin.write(f.adminCert, f.adminKey) },
		func() error {
			der, err := x509.MarshalECPrivateKey(saKey)
			if err != nil {
				return err
			}
			return writePEM(f.saKey, "EC PRIVATE KEY", der)
		},
		func() error {
			der, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
			if err != nil {
				return err
			}
			return writePEM(f.saPub, "PUBLIC KEY", der)
		},
	} {
		if err := step(); err != nil {
			return f, err
		}
	}
	return f, nil
}
