package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

func TestWazoDefaults(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w := c.Wazo
	if w.TenantUUID != DefaultTenantUUID || w.TokenExpirationSeconds != 7200 || w.MaxTokenExpirationSeconds != 86400 || len(w.Admins) != 0 {
		t.Fatalf("wazo defaults %+v", w)
	}
	if c.HTTP.TLS() {
		t.Fatal("HTTPS by default")
	}
}

func TestWazoAndTLSValidation(t *testing.T) {
	certs := testutil.TLSCert(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"admin without password", "wazo:\n  admins: [{name: root}]\n", "wazo.admins[0]: name and password are required"},
		{"admin twice", "wazo:\n  admins: [{name: root, password: abcdefgh}, {name: root, password: ijklmnop}]\n", `wazo.admins[1]: "root" is listed twice`},
		{"short password off loopback", "http:\n  listen: 0.0.0.0:8088\nari:\n  users: [{name: a, password: b}]\nwazo:\n  admins: [{name: root, password: short}]\n", "shorter than 8 characters"},
		{"bad tenant", "wazo:\n  tenant_uuid: tenant-1\n", `wazo.tenant_uuid: "tenant-1" is not a UUID`},
		{"expiry over max", "wazo:\n  token_expiration_seconds: 100\n  max_token_expiration_seconds: 50\n", "exceeds wazo.max_token_expiration_seconds"},
		{"negative expiry", "wazo:\n  token_expiration_seconds: -1\n", "must not be negative"},
		{"cert without key", "http:\n  tls_cert_file: " + certs.Cert + "\n", "tls_cert_file and tls_key_file are required together"},
		{"unreadable pair", "http:\n  tls_cert_file: " + garbage + "\n  tls_key_file: " + garbage + "\n", "http: tls_cert_file/tls_key_file:"},
		{"unknown key", "wazo:\n  admin: x\n", "field admin not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := Parse([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
		})
	}
	c := Default()
	good := "http:\n  tls_cert_file: " + certs.Cert + "\n  tls_key_file: " + certs.Key + "\nwazo:\n  admins: [{name: root, password: pw}]\n  tenant_uuid: 3f2504e0-4f89-41d3-9a0c-0305e82c3301\n"
	if err := Parse([]byte(good), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || !c.HTTP.TLS() || c.Wazo.TenantUUID != "3f2504e0-4f89-41d3-9a0c-0305e82c3301" {
		t.Fatalf("good config: %v %+v", err, c)
	}
}
