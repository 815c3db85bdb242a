package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
)

// Wazo configures the Wazo-style users API (wazo-confd, under
// /api/confd/1.1 and /1.1) and its tokens (wazo-auth, under
// /api/auth/0.1).
type Wazo struct {
	// Admins may log in at POST /api/auth/0.1/token with HTTP Basic
	// credentials and then manage every tenant's users and the feature
	// extensions. Users log in with their own username and password (set
	// through the API). Default: none (no admin can log in).
	Admins []WazoAdmin `yaml:"admins"`
	// TenantUUID is the master tenant: admins' tokens belong to it and
	// users an admin creates without a Wazo-Tenant header land in it.
	// Default: DefaultTenantUUID.
	TenantUUID string `yaml:"tenant_uuid"`
	// TokenExpirationSeconds is a token's lifetime when the login does not
	// ask for one (default 7200, as wazo-auth).
	TokenExpirationSeconds int `yaml:"token_expiration_seconds"`
	// MaxTokenExpirationSeconds caps what a login may ask for (default
	// 86400: a day).
	MaxTokenExpirationSeconds int `yaml:"max_token_expiration_seconds"`
}

// WazoAdmin is one admin credential of the Wazo-style API.
type WazoAdmin struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
}

// Wazo defaults.
const (
	DefaultTenantUUID                = "00000000-0000-4000-8000-000000000001"
	DefaultTokenExpirationSeconds    = 7200
	DefaultMaxTokenExpirationSeconds = 86400
)

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkWazo checks the wazo section and fills its defaults.
func (c *Config) checkWazo() []error {
	var errs []error
	w := &c.Wazo
	if w.TenantUUID == "" {
		w.TenantUUID = DefaultTenantUUID
	} else if !uuidRe.MatchString(w.TenantUUID) {
		errs = append(errs, fmt.Errorf("wazo.tenant_uuid: %q is not a UUID", w.TenantUUID))
	}
	if w.TokenExpirationSeconds == 0 {
		w.TokenExpirationSeconds = DefaultTokenExpirationSeconds
	}
	if w.MaxTokenExpirationSeconds == 0 {
		w.MaxTokenExpirationSeconds = DefaultMaxTokenExpirationSeconds
	}
	if w.TokenExpirationSeconds < 0 || w.MaxTokenExpirationSeconds < 0 {
		errs = append(errs, errors.New("wazo: token_expiration_seconds and max_token_expiration_seconds must not be negative"))
	} else if w.TokenExpirationSeconds > w.MaxTokenExpirationSeconds {
		errs = append(errs, fmt.Errorf("wazo.token_expiration_seconds (%d) exceeds wazo.max_token_expiration_seconds (%d)", w.TokenExpirationSeconds, w.MaxTokenExpirationSeconds))
	}
	seen := map[string]bool{}
	for i, a := range w.Admins {
		switch {
		case a.Name == "" || a.Password == "":
			errs = append(errs, fmt.Errorf("wazo.admins[%d]: name and password are required", i))
		case seen[a.Name]:
			errs = append(errs, fmt.Errorf("wazo.admins[%d]: %q is listed twice", i, a.Name))
		case len(a.Password) < 8 && !IsLoopback(c.HTTP.Listen):
			errs = append(errs, fmt.Errorf("wazo.admins[%d]: the password of %q is shorter than 8 characters while HTTP listens on %s", i, a.Name, c.HTTP.Listen))
		}
		seen[a.Name] = true
	}
	return errs
}

// checkTLS checks http.tls_cert_file and http.tls_key_file: both or
// neither, and a pair that loads.
func (c *Config) checkTLS() []error {
	cert, key := c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile
	switch {
	case cert == "" && key == "":
		return nil
	case cert == "" || key == "":
		return []error{errors.New("http: tls_cert_file and tls_key_file are required together")}
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return []error{fmt.Errorf("http: tls_cert_file/tls_key_file: %w", err)}
	}
	return nil
}

// TLS reports whether the HTTP listener serves HTTPS.
func (h HTTP) TLS() bool { return h.TLSCertFile != "" }
