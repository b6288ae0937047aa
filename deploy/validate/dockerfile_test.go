package validate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dockerfile is the image's Dockerfile, from this package.
var dockerfile = filepath.Join("..", "Dockerfile")

// TestDockerfileSteps runs the image's steps as a script, since no base
// image can be pulled here: the build stage's `go build` exactly as the
// Dockerfile writes it (a static binary), then the HEALTHCHECK command
// against that binary serving HTTP and, with AUDITBUS_TLS_CERT_FILE set,
// HTTPS.
func TestDockerfileSteps(t *testing.T) {
	text, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	df := string(text)
	// The build: the RUN line's command after its --mount flags, with the
	// Dockerfile's line continuations joined.
	joined := strings.ReplaceAll(df, "\\\n", " ")
	build := regexp.MustCompile(`(?m)^RUN (?:--mount=\S+\s+)*(CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(joined)
	if build == nil {
		t.Fatal("deploy/Dockerfile has no `RUN ... CGO_ENABLED=0 go build` step; update this test with it")
	}
	out := t.TempDir()
	script := strings.ReplaceAll(build[1], "/out/", out+"/")
	script = strings.ReplaceAll(script, "${VERSION}", "v0.0.0-test")
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build step %q: %v\n%s", script, err, b)
	}
	bin := filepath.Join(out, "auditbus")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's binary is dynamically linked; the runtime stage has no C library for it")
		}
	}
	_ = f.Close()
	if b, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.Contains(string(b), "v0.0.0-test") {
		t.Errorf("auditbus version: %v: %s (want the VERSION build argument)", err, b)
	}

	check := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["sh", "-c", "(.*)"\]\s*$`).FindStringSubmatch(joined)
	if check == nil || !strings.Contains(df, "HEALTHCHECK") {
		t.Fatal("deploy/Dockerfile has no HEALTHCHECK with a CMD [\"sh\", \"-c\", ...]; update this test with it")
	}
	health := strings.ReplaceAll(check[1], `\"`, `"`)
	certFile, keyFile := selfSigned(t)
	for _, c := range []struct {
		name string
		env  []string
	}{
		{"http", nil},
		{"https", []string{"AUDITBUS_TLS_CERT_FILE=" + certFile, "AUDITBUS_TLS_KEY_FILE=" + keyFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := append(os.Environ(), append(c.env, "AUDITBUS_LISTEN="+freeAddr(t), "AUDITBUS_DATA_DIR="+t.TempDir(), "AUDITBUS_LOG_LEVEL=warn")...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := exec.CommandContext(ctx, bin, "serve")
			d.Env = env
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = d.Wait() }()
			var last []byte
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				hc := exec.Command("sh", "-c", health)
				hc.Env = env
				b, err := hc.CombinedOutput()
				if err == nil {
					return
				}
				last = b
				if time.Now().After(deadline) {
					t.Fatalf("the HEALTHCHECK command failed for 30 s against the daemon on %s: %v\n%s", c.name, err, last)
				}
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// selfSigned writes a certificate for "auditbus" (not 127.0.0.1, as in a
// cluster) and its key, and returns their files.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auditbus"}, DNSNames: []string{"auditbus"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
