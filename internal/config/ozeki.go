package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/tapedeck/tapedeck/internal/netguard"
)

// Ozeki configures the command API in Ozeki Phone System's style
// (GET/POST /api?command=Record&...), served at /api on the HTTP listener
// and, when Listen is set, on a listener of its own.
type Ozeki struct {
	// Listen is the command API's own listener ("127.0.0.1:9509", as
	// Ozeki's); empty: /api on the HTTP listener only.
	Listen string `yaml:"listen"`
	// Users may use the API with their Username and Password parameters.
	// No users: the API answers 305 to every request.
	Users []OzekiUser `yaml:"users"`
	// RecordPaths are the directories a Record command's RecordPath may
	// name (the directory itself or one below it). Empty: RecordPath is
	// refused.
	RecordPaths []string `yaml:"record_paths"`
	// Folder is where command recordings go under the recordings root
	// (Ozeki's HttpRecordings folder); default "HttpRecordings".
	Folder string `yaml:"folder"`
	// PublicURL is the base of the RecordURL sent with RecordCompleted
	// ("https://tapedeck.example.com"); default http.public_url when the
	// API is served on the HTTP listener, else http://<the API's
	// listener>.
	PublicURL string `yaml:"public_url"`
	// RecordURLTTLSeconds is how long a RecordURL downloads the file
	// (signed URL); default 86400.
	RecordURLTTLSeconds int `yaml:"record_url_ttl_seconds"`
	// ScriptTimeoutSeconds bounds each request to an OzML application
	// (IncomingCall, UserInput); default 10.
	ScriptTimeoutSeconds int `yaml:"script_timeout_seconds"`
	// ScriptFailureURL receives a ScriptFailed notification (CallId, Url,
	// Reason) through the webhook sender whenever a Script() call is hung
	// up because its application failed; empty: none.
	ScriptFailureURL string `yaml:"script_failure_url"`
}

// OzekiUser is one command API user.
type OzekiUser struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Commands the user may run (case-insensitive); empty: all.
	Commands []string `yaml:"commands"`
	// AllowFrom lists the source networks (CIDR or address) the user may
	// call from; empty: any.
	AllowFrom []string `yaml:"allow_from"`
}

// Webhook configures every outgoing notification (Ozeki's FinishedUrl,
// RecordCompleted, OzML applications): one sender with an outbox in the
// catalog database.
type Webhook struct {
	// Allow lists the hosts notifications may go to besides public
	// addresses (netguard entries: IPs, CIDRs, host names, with optional
	// port). Loopback and private addresses are refused unless listed.
	Allow []string `yaml:"allow"`
	// Secret signs each request: header X-Tapedeck-Signature is
	// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">". Empty: not
	// signed.
	Secret string `yaml:"secret"`
	// TimeoutSeconds bounds one delivery attempt (default 10).
	TimeoutSeconds int `yaml:"timeout_seconds"`
	// MaxAttempts: a notification is given up after this many failed
	// attempts (default 8).
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffSeconds is the first retry delay, doubled after each failure
	// up to 10 minutes (default 2).
	BackoffSeconds int `yaml:"backoff_seconds"`
	// Workers deliver in parallel (default 4).
	Workers int `yaml:"workers"`
	// NodeDeadSeconds: nodes sharing one PostgreSQL catalog take over the
	// queued notifications of a node not seen for this long (it died with
	// them queued; default 30). Each node says it is alive every third of it.
	NodeDeadSeconds int `yaml:"node_dead_seconds"`
}

// WebhookDefaults fills the defaults of zero fields.
func (w *Webhook) WebhookDefaults() {
	if w.TimeoutSeconds <= 0 {
		w.TimeoutSeconds = 10
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 8
	}
	if w.BackoffSeconds <= 0 {
		w.BackoffSeconds = 2
	}
	if w.Workers <= 0 {
		w.Workers = 4
	}
}

// OzekiFolder is the folder of command recordings under the root.
func (c *Config) OzekiFolder() string {
	if c.Ozeki.Folder == "" {
		return "HttpRecordings"
	}
	return c.Ozeki.Folder
}

func (c *Config) checkOzeki() []error {
	var errs []error
	o := &c.Ozeki
	if o.Listen != "" {
		if _, _, err := checkListen("ozeki.listen", o.Listen); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]bool{}
	for i, u := range o.Users {
		if u.Username == "" || u.Password == "" {
			errs = append(errs, fmt.Errorf("ozeki.users[%d]: username and password are required", i))
		}
		if seen[strings.ToLower(u.Username)] {
			errs = append(errs, fmt.Errorf("ozeki.users[%d]: username %q is listed twice", i, u.Username))
		}
		seen[strings.ToLower(u.Username)] = true
		for _, a := range u.AllowFrom {
			if _, err := netip.ParsePrefix(a); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(a); err != nil {
				errs = append(errs, fmt.Errorf("ozeki.users[%d].allow_from: %q is not an address or a CIDR network", i, a))
			}
		}
	}
	for _, p := range o.RecordPaths {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("ozeki.record_paths: %q is not an absolute path", p))
		}
	}
	if f := o.Folder; f != "" && (filepath.IsAbs(f) || strings.Contains(f, "..")) {
		errs = append(errs, fmt.Errorf("ozeki.folder: %q must be a relative name inside the recordings root", f))
	}
	if o.PublicURL != "" && !strings.HasPrefix(o.PublicURL, "http://") && !strings.HasPrefix(o.PublicURL, "https://") {
		errs = append(errs, fmt.Errorf("ozeki.public_url: %q is not an http(s) URL", o.PublicURL))
	}
	if u := o.ScriptFailureURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		errs = append(errs, fmt.Errorf("ozeki.script_failure_url: %q is not an http(s) URL", u))
	}
	if o.RecordURLTTLSeconds < 0 || o.ScriptTimeoutSeconds < 0 {
		errs = append(errs, errors.New("ozeki: record_url_ttl_seconds and script_timeout_seconds must not be negative"))
	}
	if _, err := netguard.Parse(c.Webhook.Allow); err != nil {
		errs = append(errs, fmt.Errorf("webhook.allow: %w", err))
	}
	w := c.Webhook
	if w.TimeoutSeconds < 0 || w.MaxAttempts < 0 || w.BackoffSeconds < 0 || w.Workers < 0 {
		errs = append(errs, errors.New("webhook: timeout_seconds, max_attempts, backoff_seconds and workers must not be negative"))
	}
	return errs
}
