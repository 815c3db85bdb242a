// Package config holds tapedeck's configuration: one struct with YAML tags,
// embedded defaults, strict loading (unknown keys are an error) and
// environment overrides.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tapedeck/tapedeck/internal/netguard"
)

// Config is the whole configuration of one tapedeck node.
type Config struct {
	// DataDir holds recordings and the embedded database.
	DataDir string `yaml:"data_dir"`
	// Log configures structured logging.
	Log Log `yaml:"log"`
	SIP SIP `yaml:"sip"`
	RTP RTP `yaml:"rtp"`
	// HTTP is the listener for ARI and the other HTTP APIs.
	HTTP HTTP `yaml:"http"`
	ARI  ARI  `yaml:"ari"`
	// Dialplan routes dialled extensions to applications.
	Dialplan []Route `yaml:"dialplan"`
	// Recording configures where recordings are kept.
	Recording Recording `yaml:"recording"`
	// Sounds configures where prompts are found.
	Sounds Sounds `yaml:"sounds"`
	// Catalog configures the recordings catalog.
	Catalog Catalog `yaml:"catalog"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM, in seconds.
	ShutdownTimeout int `yaml:"shutdown_timeout_seconds"`
}

// Catalog configures the recordings catalog (metadata and files).
type Catalog struct {
	// Database is a PostgreSQL DSN (postgres://...); empty means SQLite at
	// <data_dir>/tapedeck.db.
	Database string `yaml:"database"`
	// MediaAccess: public (download by unguessable Sid, as Restcomm),
	// auth (Basic AccountSid:AuthToken) or signed (short-lived signed URLs).
	MediaAccess string `yaml:"media_access"`
	// SignedURLTTL is the lifetime of signed media URLs, in seconds.
	SignedURLTTL int `yaml:"signed_url_ttl_seconds"`
	// ReconcileInterval is how often, in seconds, the catalog retries the
	// writes that failed (e.g. while the database's disk was full) and
	// settles rows left in progress; 0 means 30. It also runs at start-up.
	ReconcileInterval int `yaml:"reconcile_interval_seconds"`
	// SignKey signs media URLs (hex or text); random at each start when empty.
	SignKey string `yaml:"sign_key"`
	// S3 stores finished files in S3-compatible object storage.
	S3 S3 `yaml:"s3"`
}

// S3 configures S3-compatible object storage.
type S3 struct {
	Endpoint  string `yaml:"endpoint"` // host:port; empty disables S3
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Bucket    string `yaml:"bucket"`
	Region    string `yaml:"region"`
	UseSSL    bool   `yaml:"use_ssl"`
	Prefix    string `yaml:"prefix"`
	// KeepLocal keeps the local copy after a verified upload.
	KeepLocal bool `yaml:"keep_local"`
	// PartSizeMB is the multipart part size (default 16).
	PartSizeMB int `yaml:"part_size_mb"`
}

// DatabasePath is the SQLite file used when no DSN is configured.
func (c *Config) DatabasePath() string { return filepath.Join(c.DataDir, "tapedeck.db") }

// Sounds configures prompt playback.
type Sounds struct {
	// Dirs are searched in order for sound:NAME; default <data_dir>/sounds,
	// /var/lib/asterisk/sounds, /usr/share/asterisk/sounds (Debian's
	// asterisk-core-sounds-en-wav).
	Dirs []string `yaml:"dirs"`
	// HTTPAllow lists where `sound:http(s)://` media may be fetched from
	// besides public addresses: IPs, CIDR networks, host names, each
	// optionally with a port ("127.0.0.1:8000", "10.0.0.0/8",
	// "media.example.com"). Loopback, private, link-local, CGNAT and other
	// special addresses are refused unless listed; the check is made on the
	// resolved address of every connection, redirects included. Default:
	// none (public addresses only).
	HTTPAllow []string `yaml:"http_allow"`
}

// SoundDirs is the sounds search path.
func (c *Config) SoundDirs() []string {
	if len(c.Sounds.Dirs) > 0 {
		return c.Sounds.Dirs
	}
	return []string{filepath.Join(c.DataDir, "sounds"), "/var/lib/asterisk/sounds", "/usr/share/asterisk/sounds"}
}

// Recording configures recordings.
type Recording struct {
	// Dir is the recordings root; default <data_dir>/recording.
	Dir string `yaml:"dir"`
	// MaxDurationSeconds caps every recording's length (default 14400, four
	// hours): an ARI maxDurationSeconds of 0 (unlimited) or above it gets
	// this, and dialplan Record() routes too unless their route sets
	// max_duration_seconds. A recording reaching it is finished and a log
	// line says so; a dialplan Record() call is then hung up.
	MaxDurationSeconds int `yaml:"max_duration_seconds"`
	// FsyncIntervalSeconds is how often each recording's file is fsynced
	// (default 2): a power cut loses at most this much audio plus what is
	// queued for the writer. 0 never fsyncs (a crash of the process still
	// loses at most about a second; a power cut, what the kernel had not
	// written).
	FsyncIntervalSeconds int `yaml:"fsync_interval_seconds"`
}

// DefaultFsyncIntervalSeconds is recording.fsync_interval_seconds' default.
const DefaultFsyncIntervalSeconds = 2

// DefaultMaxRecordingSeconds is recording.max_duration_seconds' default.
const DefaultMaxRecordingSeconds = 4 * 60 * 60

// RecordingsDir is the recordings root.
func (c *Config) RecordingsDir() string {
	if c.Recording.Dir != "" {
		return c.Recording.Dir
	}
	return filepath.Join(c.DataDir, "recording")
}

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// SIP configures the SIP endpoint.
type SIP struct {
	// Listen is host:port for both UDP and TCP.
	Listen string `yaml:"listen"`
	// Transports lists the transports to serve: udp, tcp.
	Transports []string `yaml:"transports"`
	// ExternalHost is the address put in Contact and SDP; defaults to the
	// listen host.
	ExternalHost string `yaml:"external_host"`
	// UserAgent is sent in User-Agent and Server headers.
	UserAgent string `yaml:"user_agent"`
	// TCP limits SIP over TCP.
	TCP SIPTCP `yaml:"tcp"`
	// MalformedLogLevel is the level at which a message that cannot be
	// parsed is logged (truncated, at most about one line a second):
	// debug, info (default), warn or error. Each is counted either way.
	MalformedLogLevel string `yaml:"malformed_log_level"`
}

// SIPTCP limits the connections SIP over TCP accepts, so that idle or
// hostile connections cannot use up the process's descriptors.
type SIPTCP struct {
	// IdleTimeoutSeconds closes a connection after this long without
	// traffic, unless a call uses it (default 120; 0 never).
	IdleTimeoutSeconds int `yaml:"idle_timeout_seconds"`
	// MaxConnections caps open connections (default 0: half the descriptor
	// limit, which tapedeck raises to the hard limit at start, at most
	// 10,000).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerSource caps open connections from one IP address
	// (default 64; 0 no cap).
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
}

// RTP configures media ports.
type RTP struct {
	// Host is the local address RTP sockets bind to; defaults to the SIP host.
	Host    string `yaml:"host"`
	PortMin int    `yaml:"port_min"`
	PortMax int    `yaml:"port_max"`
	// Codecs lists the audio codecs offered/accepted, in preference order.
	Codecs []string `yaml:"codecs"`
	// DTMFPayloadType is the payload type used for telephone-event in offers.
	DTMFPayloadType int `yaml:"dtmf_payload_type"`
	// ReadIntervalMs: received RTP is read in batches, by one reader per two
	// cores, every this many milliseconds (default 100) for channels outside
	// bridges: recorded calls, IVRs. Batching is what makes a recorded call
	// cheap: the server wakes once per interval for all calls, not once per
	// packet, and reads several packets per syscall. Packets keep their
	// kernel arrival times; hangups and recording controls read what is
	// queued first. 0 reads every socket with its own goroutine the moment a
	// packet arrives.
	ReadIntervalMs int `yaml:"read_interval_ms"`
	// StepMs is how often the batch readers wake (default 10): each wake-up
	// reads the sockets due and runs the 20 ms mix of the bridges due, which
	// read their parties' audio right before mixing. It must divide 20.
	// Shorter steps cost wake-ups; longer ones keep the reader away from the
	// Go scheduler for longer, which costs more (measured in bench/RESULTS.md).
	StepMs int `yaml:"step_ms"`
}

// HTTP configures the HTTP listener.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// ARI configures the Asterisk REST Interface.
type ARI struct {
	// Users that may use ARI. When empty and HTTP is bound to loopback, the
	// default user asterisk/asterisk is accepted.
	Users []ARIUser `yaml:"users"`
	// EntityID is reported as asterisk_id; defaults to a MAC-like id derived
	// from the host.
	EntityID string `yaml:"entity_id"`
	// EventQueue is the number of events buffered per WebSocket client before
	// a slow client is disconnected.
	EventQueue int `yaml:"event_queue"`
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// allowed to call ARI cross-origin, as Asterisk's allowed_origins: a
	// listed Origin is reflected with credentials allowed; "*" allows any
	// origin. Default: none (no CORS headers). Non-browser clients need no
	// entry.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// ARIUser is one ARI credential.
type ARIUser struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	ReadOnly bool   `yaml:"read_only"`
}

// Route maps a dialled extension to an application.
//
//   - exten: _3XX
//     app: Stasis(vm-record,${EXTEN})
type Route struct {
	Exten string `yaml:"exten"`
	App   string `yaml:"app"`
	// Context is reported in the channel's dialplan; default "default".
	Context string `yaml:"context"`
	// Account is the name of the account owning the calls' recordings
	// (default: the default account).
	Account string `yaml:"account"`
	// MaxDurationSeconds caps the length of a Record() route's recordings
	// (default: recording.max_duration_seconds, which it may not exceed).
	MaxDurationSeconds int `yaml:"max_duration_seconds"`
}

// Default returns the embedded defaults: loopback SIP and HTTP, data under
// ./data, no routes.
func Default() Config {
	return Config{
		DataDir: "./data",
		Log:     Log{Level: "info", Format: "text"},
		SIP: SIP{
			Listen:     "127.0.0.1:5060",
			Transports: []string{"udp", "tcp"},
			UserAgent:  "tapedeck",
			TCP:        SIPTCP{IdleTimeoutSeconds: 120, MaxConnectionsPerSource: 64},

			MalformedLogLevel: "info",
		},
		RTP: RTP{
			PortMin:         10000,
			PortMax:         20000,
			Codecs:          []string{"PCMU", "PCMA"},
			DTMFPayloadType: 101,
			ReadIntervalMs:  100,
			StepMs:          10,
		},
		HTTP:            HTTP{Listen: "127.0.0.1:8088"},
		ARI:             ARI{EventQueue: 1024},
		Recording:       Recording{MaxDurationSeconds: DefaultMaxRecordingSeconds, FsyncIntervalSeconds: DefaultFsyncIntervalSeconds},
		ShutdownTimeout: 30,
	}
}

// Load reads a YAML file over the defaults. Unknown keys are an error.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := Parse(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML into cfg, rejecting unknown keys.
func Parse(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return err
	}
	return nil
}

// envOverrides maps environment variables to setters.
var envOverrides = map[string]func(*Config, string) error{
	"TAPEDECK_DATA_DIR":    func(c *Config, v string) error { c.DataDir = v; return nil },
	"TAPEDECK_SIP_LISTEN":  func(c *Config, v string) error { c.SIP.Listen = v; return nil },
	"TAPEDECK_HTTP_LISTEN": func(c *Config, v string) error { c.HTTP.Listen = v; return nil },
	"TAPEDECK_LOG_LEVEL":   func(c *Config, v string) error { c.Log.Level = v; return nil },
	"TAPEDECK_DATABASE":    func(c *Config, v string) error { c.Catalog.Database = v; return nil },
	"TAPEDECK_LOG_FORMAT":  func(c *Config, v string) error { c.Log.Format = v; return nil },
	"TAPEDECK_EXTERNAL_HOST": func(c *Config, v string) error {
		c.SIP.ExternalHost = v
		return nil
	},
	"TAPEDECK_RTP_PORTS": func(c *Config, v string) error {
		lo, hi, ok := strings.Cut(v, "-")
		if !ok {
			return fmt.Errorf("want MIN-MAX, got %q", v)
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("want MIN-MAX, got %q", v)
		}
		c.RTP.PortMin, c.RTP.PortMax = a, b
		return nil
	},
	"TAPEDECK_ARI_USER": func(c *Config, v string) error {
		name, pass, ok := strings.Cut(v, ":")
		if !ok {
			return fmt.Errorf("want USER:PASSWORD")
		}
		c.ARI.Users = append(c.ARI.Users, ARIUser{Name: name, Password: pass})
		return nil
	},
}

// ApplyEnv applies TAPEDECK_* environment overrides using getenv.
func ApplyEnv(cfg *Config, getenv func(string) string) error {
	for name, set := range envOverrides {
		if v := getenv(name); v != "" {
			if err := set(cfg, v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	var errs []error
	sipHost, _, err := net.SplitHostPort(c.SIP.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("sip.listen: %w", err))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		errs = append(errs, fmt.Errorf("http.listen: %w", err))
	}
	for _, t := range c.SIP.Transports {
		if t != "udp" && t != "tcp" {
			errs = append(errs, fmt.Errorf("sip.transports: unknown transport %q (udp, tcp)", t))
		}
	}
	if t := c.SIP.TCP; t.IdleTimeoutSeconds < 0 || t.MaxConnections < 0 || t.MaxConnectionsPerSource < 0 {
		errs = append(errs, errors.New("sip.tcp: idle_timeout_seconds, max_connections and max_connections_per_source must not be negative"))
	}
	if len(c.SIP.Transports) == 0 {
		errs = append(errs, errors.New("sip.transports: at least one transport is required"))
	}
	if c.RTP.PortMin <= 0 || c.RTP.PortMax > 65535 || c.RTP.PortMin > c.RTP.PortMax {
		errs = append(errs, fmt.Errorf("rtp: bad port range %d-%d", c.RTP.PortMin, c.RTP.PortMax))
	}
	if c.RTP.ReadIntervalMs < 0 || c.RTP.ReadIntervalMs > 1000 {
		errs = append(errs, fmt.Errorf("rtp.read_interval_ms: %d is outside 0-1000", c.RTP.ReadIntervalMs))
	}
	if st := c.RTP.StepMs; st < 1 || st > 20 || 20%st != 0 {
		errs = append(errs, fmt.Errorf("rtp.step_ms: %d does not divide the 20 ms mix step (1, 2, 4, 5, 10 or 20)", st))
	} else if c.RTP.ReadIntervalMs > 0 && c.RTP.ReadIntervalMs%st != 0 {
		errs = append(errs, fmt.Errorf("rtp.read_interval_ms (%d) is not a multiple of rtp.step_ms (%d)", c.RTP.ReadIntervalMs, st))
	}
	if c.RTP.DTMFPayloadType < 96 || c.RTP.DTMFPayloadType > 127 {
		errs = append(errs, fmt.Errorf("rtp.dtmf_payload_type: %d is not a dynamic payload type (96-127)", c.RTP.DTMFPayloadType))
	}
	if len(c.RTP.Codecs) == 0 {
		errs = append(errs, errors.New("rtp.codecs: at least one codec is required"))
	}
	for _, cd := range c.RTP.Codecs {
		switch strings.ToUpper(cd) {
		case "PCMU", "PCMA":
		default:
			errs = append(errs, fmt.Errorf("rtp.codecs: unsupported codec %q (PCMU, PCMA)", cd))
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.SIP.MalformedLogLevel {
	case "":
		c.SIP.MalformedLogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("sip.malformed_log_level: %q is not debug, info, warn or error", c.SIP.MalformedLogLevel))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	if c.SIP.ExternalHost == "" {
		c.SIP.ExternalHost = sipHost
	}
	if c.RTP.Host == "" {
		c.RTP.Host = sipHost
	}
	if c.Catalog.ReconcileInterval < 0 {
		errs = append(errs, fmt.Errorf("catalog.reconcile_interval_seconds: %d is negative", c.Catalog.ReconcileInterval))
	}
	switch c.Catalog.MediaAccess {
	case "":
		c.Catalog.MediaAccess = "public"
	case "public", "auth", "signed":
	default:
		errs = append(errs, fmt.Errorf("catalog.media_access: %q is not public, auth or signed", c.Catalog.MediaAccess))
	}
	if c.Catalog.S3.Endpoint != "" && (c.Catalog.S3.Bucket == "" || c.Catalog.S3.AccessKey == "" || c.Catalog.S3.SecretKey == "") {
		errs = append(errs, errors.New("catalog.s3: endpoint, bucket, access_key and secret_key are required together"))
	}
	if _, err := netguard.Parse(c.Sounds.HTTPAllow); err != nil {
		errs = append(errs, fmt.Errorf("sounds.http_allow: %w", err))
	}
	if c.ARI.EventQueue <= 0 {
		c.ARI.EventQueue = 1024
	}
	if len(c.ARI.Users) == 0 && !IsLoopback(c.HTTP.Listen) {
		errs = append(errs, fmt.Errorf("ari.users: HTTP listens on %s, which is not loopback; configure ARI credentials (the default asterisk/asterisk is only accepted on loopback)", c.HTTP.Listen))
	}
	for _, o := range c.ARI.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("ari.allowed_origins: %w", err))
		}
	}
	for i, u := range c.ARI.Users {
		if u.Name == "" || u.Password == "" {
			errs = append(errs, fmt.Errorf("ari.users[%d]: name and password are required", i))
		}
	}
	if c.Recording.FsyncIntervalSeconds < 0 {
		errs = append(errs, fmt.Errorf("recording.fsync_interval_seconds: %d is negative (0 never fsyncs)", c.Recording.FsyncIntervalSeconds))
	}
	if c.Recording.MaxDurationSeconds <= 0 {
		errs = append(errs, fmt.Errorf("recording.max_duration_seconds: %d; every recording needs a maximum length (default %d)", c.Recording.MaxDurationSeconds, DefaultMaxRecordingSeconds))
	}
	for i, r := range c.Dialplan {
		if r.Exten == "" || r.App == "" {
			errs = append(errs, fmt.Errorf("dialplan[%d]: exten and app are required", i))
		}
		switch {
		case r.MaxDurationSeconds < 0:
			errs = append(errs, fmt.Errorf("dialplan[%d].max_duration_seconds: %d is negative", i, r.MaxDurationSeconds))
		case r.MaxDurationSeconds > 0 && !strings.HasPrefix(strings.TrimSpace(r.App), "Record("):
			errs = append(errs, fmt.Errorf("dialplan[%d].max_duration_seconds: only Record() routes record by themselves (app is %s)", i, r.App))
		case c.Recording.MaxDurationSeconds > 0 && r.MaxDurationSeconds > c.Recording.MaxDurationSeconds:
			errs = append(errs, fmt.Errorf("dialplan[%d].max_duration_seconds: %d exceeds recording.max_duration_seconds (%d)", i, r.MaxDurationSeconds, c.Recording.MaxDurationSeconds))
		}
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host:port binds only to a loopback address.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ARICredentials returns the accepted ARI users: the configured ones, or the
// default asterisk/asterisk while bound to loopback.
func (c *Config) ARICredentials() []ARIUser {
	if len(c.ARI.Users) > 0 {
		return c.ARI.Users
	}
	if IsLoopback(c.HTTP.Listen) {
		return []ARIUser{{Name: "asterisk", Password: "asterisk"}}
	}
	return nil
}

// checkOrigin accepts "*" or an origin: scheme://host[:port], nothing after.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not \"*\" or an origin (scheme://host[:port])", o)
	}
	return nil
}
