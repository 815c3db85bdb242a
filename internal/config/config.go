// Package config holds tapedeck's configuration: one struct with YAML tags,
// embedded defaults, strict loading (unknown keys are an error) and
// environment overrides.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tapedeck/tapedeck/internal/dialplan"
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
	// Trunks are the SIP peers that bring external calls in and take
	// users' calls to numbers that are no extension out (trunks.go).
	Trunks []Trunk `yaml:"trunks"`
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
	// Wazo configures the Wazo-style users API and its tokens.
	Wazo Wazo `yaml:"wazo"`
	// CallRecording names the files of calls recorded by policy.
	CallRecording CallRecording `yaml:"call_recording"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM, in seconds.
	ShutdownTimeout int `yaml:"shutdown_timeout_seconds"`
	// NodeID names this node, as Asterisk's system name: it prefixes channel
	// and bridge ids and ${UNIQUEID}, and marks the catalog rows the node
	// makes. Default: kept in the data directory, derived on the first
	// start from the host name and a random suffix (ResolveNodeID), so that
	// two nodes on one host differ.
	NodeID string `yaml:"node_id"`
	// Ozeki is the command API in Ozeki's style (ozeki.go).
	Ozeki Ozeki `yaml:"ozeki"`
	// NATS connects the node to a NATS server (nats://host:4222) on which
	// it publishes its ARI events in ari-proxy's subjects,
	// ari.event.{app}.{asterisk_id}, and serves and sends ARI requests
	// between nodes (ari.get|command|create.{app}.{node}; README). Empty:
	// no NATS.
	NATS NATS `yaml:"nats"`
	// Webhook configures outgoing notifications (ozeki.go).
	Webhook Webhook `yaml:"webhook"`
	// Twilio configures the Twilio Recordings API's live-call control.
	Twilio Twilio `yaml:"twilio"`
}

// Twilio configures the Twilio Recordings API.
type Twilio struct {
	// MaxRecordingsPerCall bounds the recordings of one call started
	// through the API (POST Calls/{CallSid}/Recordings) that run at once:
	// one more is refused with 400 and Twilio's error 16108 ("concurrent
	// recordings"), nothing started. 0 means 1; -1: no bound (with more
	// than one running, Twilio.CURRENT names none: 16108). Recordings made
	// otherwise (ARI, dialplan, policy) are not counted.
	MaxRecordingsPerCall int `yaml:"max_recordings_per_call"`
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
	// TokenKey seals the accounts' auth tokens in the catalog (AES-256-GCM
	// under a key derived from it; hex or text). Empty: the key kept in
	// <data_dir>/token.key (made when missing). Nodes sharing a PostgreSQL
	// catalog must be given the same one.
	TokenKey string `yaml:"token_key"`
	// S3 stores finished files in S3-compatible object storage.
	S3 S3 `yaml:"s3"`
	// DeletedRetentionDays is how long a recording deleted through the
	// Recordings APIs keeps its row (status deleted, listed with
	// IncludeSoftDeleted); its media goes at once. 0 means 40 (Twilio's);
	// -1 keeps them forever.
	DeletedRetentionDays int `yaml:"deleted_retention_days"`
	// NodeLostSeconds: nodes sharing one PostgreSQL catalog settle the
	// recordings left in progress by a node whose heartbeat (every third
	// of webhook.node_dead_seconds) has been gone this long: failed, "node
	// lost", or recovered when the file is reachable in a shared
	// recordings directory. 0 means 300; -1 never. At least
	// webhook.node_dead_seconds.
	NodeLostSeconds int `yaml:"node_lost_seconds"`
}

// NodeLostAfter is catalog.node_lost_seconds as a duration (0: never).
func (c *Config) NodeLostAfter() time.Duration {
	switch n := c.Catalog.NodeLostSeconds; {
	case n < 0:
		return 0
	case n == 0:
		return 300 * time.Second
	default:
		return time.Duration(n) * time.Second
	}
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
	// MOHDir holds the music on hold classes (ARI's moh/startMoh
	// mohClass), as Asterisk's musiconhold.conf files mode: the files
	// directly in it are the class "default", each subdirectory is a class
	// of its name. Default /usr/share/asterisk/moh (Debian's
	// asterisk-moh-opsound-wav, Asterisk's default class).
	MOHDir string `yaml:"moh_dir"`
}

// MOHDir is the music on hold directory.
func (c *Config) MOHDir() string {
	if c.Sounds.MOHDir != "" {
		return c.Sounds.MOHDir
	}
	return "/usr/share/asterisk/moh"
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
	// FsyncIntervalSeconds is how often the file systems that recordings
	// write to are synced, one syncfs for all the recordings on each
	// (default 2): a power cut loses at most this much audio plus 1.5 s
	// (the recorder's second and the writer's queue) plus the sync's own
	// time. 0 never syncs (a crash of the process still loses at most
	// 1.5 s; a power cut, what the kernel had not written).
	FsyncIntervalSeconds int `yaml:"fsync_interval_seconds"`
	// DegradedLossPercent is the packet loss, in percent of the packets
	// expected, past which a recording is reported degraded (ARI's
	// RecordingDegraded event, the Twilio status callback's degraded
	// event, the catalog's quality): default 2; 0 never reports.
	DegradedLossPercent float64 `yaml:"degraded_loss_percent"`
	// Checksum is when the SHA-256 of a recording kept on local disk is
	// computed: ChecksumOnDemand (the default) when something needs it
	// (the media caches' keys; the Recordings API shows none until then),
	// never on the recording's path; ChecksumBackground by a background
	// job after each recording's end, one file at a time, re-reading the
	// file. With object storage the upload computes it either way, from
	// the read that sends the file.
	Checksum string `yaml:"checksum"`
}

// recording.checksum's values.
const (
	ChecksumOnDemand   = "on_demand"
	ChecksumBackground = "background"
)

// DefaultDegradedLossPercent is recording.degraded_loss_percent's default:
// past 2 % loss G.711 speech is audibly broken up.
const DefaultDegradedLossPercent = 2.0

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
	// SessionExpiresSeconds is the RFC 4028 session interval offered to
	// callers that support session timers without asking for one (default
	// 1800); the call ends with a BYE when no refresh comes in time. 0
	// turns session timers off. MinSESeconds is the smallest interval
	// accepted: below it the INVITE gets 422 (default 90).
	SessionExpiresSeconds int `yaml:"session_expires_seconds"`
	MinSESeconds          int `yaml:"min_se_seconds"`
	// Realm of the registrar's digest challenges (default "tapedeck").
	Realm string `yaml:"realm"`
	// DigestAlgorithms are the challenges offered, in order of preference
	// (RFC 8760): SHA-256 and/or MD5. Default [SHA-256, MD5]. Phones that
	// fail on a challenge they cannot answer instead of skipping it
	// (baresip 1.0: libre before 2.0) need [MD5] alone.
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	// Registrar bounds what the registrar accepts.
	Registrar SIPRegistrar `yaml:"registrar"`
}

// SIPRegistrar are the registrar's limits: expiry, contacts, and how
// hard one address may push it.
type SIPRegistrar struct {
	// MinExpiresSeconds: a shorter non-zero expiry is answered 423 with
	// Min-Expires (default 60). MaxExpiresSeconds caps the expiry granted
	// (default 3600). DefaultExpiresSeconds is granted when a REGISTER
	// names none (default 3600, at most the maximum).
	MinExpiresSeconds     int `yaml:"min_expires_seconds"`
	MaxExpiresSeconds     int `yaml:"max_expires_seconds"`
	DefaultExpiresSeconds int `yaml:"default_expires_seconds"`
	// MaxContactsPerUser bounds a user's registered contacts, and
	// MaxContactsPerRequest the Contact headers of one REGISTER; more is
	// 403 (defaults 10 and 10).
	MaxContactsPerUser    int `yaml:"max_contacts_per_user"`
	MaxContactsPerRequest int `yaml:"max_contacts_per_request"`
	// RegistersPerSecondPerSource and RegisterBurstPerSource bound the
	// REGISTERs of one address (a token bucket; more are dropped and
	// counted as register_flooded). Defaults 50 and 200.
	RegistersPerSecondPerSource float64 `yaml:"registers_per_second_per_source"`
	RegisterBurstPerSource      int     `yaml:"register_burst_per_source"`
	// AuthFailureThreshold failed authentications from one address within
	// AuthFailureWindowSeconds delay its next answers (doubling from 200
	// ms to 5 s); ten times as many drop its requests until the window
	// has passed. Defaults 5 and 60. This throttles INVITEs too.
	AuthFailureThreshold     int `yaml:"auth_failure_threshold"`
	AuthFailureWindowSeconds int `yaml:"auth_failure_window_seconds"`
	// NonceTTLSeconds is how long a digest nonce is accepted before it is
	// challenged again with stale=true (default 300).
	NonceTTLSeconds int `yaml:"nonce_ttl_seconds"`
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
	// queued first. A channel that only recordings tap, in no application,
	// is read every 200 ms instead when this divides 200 in two or more
	// (call/relax.go). 0 reads every socket with its own goroutine the
	// moment a packet arrives.
	ReadIntervalMs int `yaml:"read_interval_ms"`
	// StepMs is how often a batch reader that runs bridges wakes (default
	// 10): each wake-up reads the sockets due and runs the 20 ms mix of the
	// bridges due, which read their parties' audio right before mixing. A
	// reader without bridges wakes once per read interval instead. It must
	// divide 20. Shorter steps cost wake-ups; longer ones keep the reader
	// away from the Go scheduler for longer, which costs more (measured in
	// bench/RESULTS.md).
	StepMs int `yaml:"step_ms"`
	// TimeoutSeconds hangs up an answered call that has received no RTP
	// for this long (as Asterisk's rtp_timeout), so a call whose far end
	// vanished without a BYE ends and its recording is finished. The
	// count pauses while the peer holds the call (sendonly, inactive) or
	// does not send (recvonly). Default 60; 0 turns it off.
	TimeoutSeconds int `yaml:"timeout_seconds"`
}

// HTTP configures the HTTP listener.
type HTTP struct {
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile (PEM) make the listener serve HTTPS
	// instead of HTTP; both or neither.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// MetricsAuth requires ARI credentials for /metrics; by default it is
	// public, as Prometheus usually scrapes (bind HTTP to a private
	// address, or set this).
	MetricsAuth bool `yaml:"metrics_auth"`
	// AccessLog logs one line per HTTP request (method, route, status,
	// duration, source) at info level.
	AccessLog bool `yaml:"access_log"`
	// MinFreeDiskMB: /readyz answers 503 while the recordings root has less
	// free space than this (0: no check).
	MinFreeDiskMB int `yaml:"min_free_disk_mb"`
	// PublicURL is the base (scheme://host[:port][/prefix]) of the absolute
	// URLs the Recordings APIs return (file_uri, media_url); empty: the
	// scheme and Host of each request.
	PublicURL string `yaml:"public_url"`
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
	// WebSocketClients are the connections an external media channel with
	// transport websocket and connection_type client may dial, by id
	// (Asterisk's websocket_client.conf): externalMedia names the id in
	// external_host.
	WebSocketClients []WebSocketClient `yaml:"websocket_clients"`
	// AudioSocketBatchMs is how much audio an AudioSocket external media
	// stream writes to its socket at once, in ms (a multiple of 20, at
	// most 1000). 0 (default): each 20 ms frame as it is sent, as Asterisk
	// does. More costs fewer write system calls and adds up to that much
	// latency minus 20 ms to the audio the far end hears (for a
	// transcription app that does not answer in real time).
	AudioSocketBatchMs int `yaml:"audiosocket_batch_ms"`
}

// WebSocketClient is one websocket client connection for external media.
type WebSocketClient struct {
	ID string `yaml:"id"`
	// URI is the ws:// or wss:// address of the application's media server.
	URI string `yaml:"uri"`
	// Protocols are the WebSocket sub-protocols offered (default: media).
	Protocols []string `yaml:"protocols"`
	Username  string   `yaml:"username"`
	Password  string   `yaml:"password"`
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
	// Variables are set on the calls the route takes, before its
	// application runs (e.g. TOUCH_MIXMONITOR for *3 recordings' names).
	Variables map[string]string `yaml:"variables"`
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

			SessionExpiresSeconds: 1800,
			MinSESeconds:          90,
			Registrar: SIPRegistrar{MinExpiresSeconds: 60, MaxExpiresSeconds: 3600, DefaultExpiresSeconds: 3600,
				MaxContactsPerUser: 10, MaxContactsPerRequest: 10, RegistersPerSecondPerSource: 50, RegisterBurstPerSource: 200,
				AuthFailureThreshold: 5, AuthFailureWindowSeconds: 60, NonceTTLSeconds: 300},
		},
		RTP: RTP{
			PortMin:         10000,
			PortMax:         20000,
			Codecs:          []string{"PCMU", "PCMA"},
			DTMFPayloadType: 101,
			ReadIntervalMs:  100,
			StepMs:          10,
			TimeoutSeconds:  60,
		},
		HTTP: HTTP{Listen: "127.0.0.1:8088", MinFreeDiskMB: 100},
		ARI:  ARI{EventQueue: 1024},
		Recording: Recording{MaxDurationSeconds: DefaultMaxRecordingSeconds, FsyncIntervalSeconds: DefaultFsyncIntervalSeconds,
			DegradedLossPercent: DefaultDegradedLossPercent, Checksum: ChecksumOnDemand},
		ShutdownTimeout: 30,
		// A route a newcomer can call at once: it answers and records the
		// caller under <data>/recording/calls/. A configuration file with
		// a dialplan replaces it.
		Dialplan: []Route{{Exten: "2001", App: DefaultRecordApp}},
	}
}

// DefaultRecordApp is the default configuration's route 2001.
const DefaultRecordApp = "Record(calls/${EXTEN}-${UNIQUEID},wav)"

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
	"TAPEDECK_NODE_ID":     func(c *Config, v string) error { c.NodeID = v; return nil },
	"TAPEDECK_NATS_URL":    func(c *Config, v string) error { c.NATS.URL = v; return nil },
	"TAPEDECK_NATS_PREFIX": func(c *Config, v string) error { c.NATS.Prefix = v; return nil },
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
	"TAPEDECK_SIGN_KEY":      func(c *Config, v string) error { c.Catalog.SignKey = v; return nil },
	"TAPEDECK_TOKEN_KEY":     func(c *Config, v string) error { c.Catalog.TokenKey = v; return nil },
	"TAPEDECK_S3_ACCESS_KEY": func(c *Config, v string) error { c.Catalog.S3.AccessKey = v; return nil },
	"TAPEDECK_S3_SECRET_KEY": func(c *Config, v string) error { c.Catalog.S3.SecretKey = v; return nil },
}

// SecretEnv lists the environment variables that carry secrets; each may
// instead name a file with NAME_FILE (its content, trailing newline
// removed), as container secrets and systemd credentials are mounted.
var SecretEnv = []string{"TAPEDECK_ARI_USER", "TAPEDECK_DATABASE", "TAPEDECK_SIGN_KEY", "TAPEDECK_TOKEN_KEY", "TAPEDECK_S3_ACCESS_KEY", "TAPEDECK_S3_SECRET_KEY"}

// ApplyEnv applies TAPEDECK_* environment overrides using getenv.
func ApplyEnv(cfg *Config, getenv func(string) string) error {
	for name, set := range envOverrides {
		v := getenv(name)
		if f := getenv(name + "_FILE"); f != "" && v == "" && slices.Contains(SecretEnv, name) {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("%s_FILE: %w", name, err)
			}
			v = strings.TrimRight(string(b), "\r\n")
		}
		if v != "" {
			if err := set(cfg, v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// Validate checks the configuration and fills derived defaults. The
// dialplan is compiled, but its applications' arguments are only checked
// by ValidateWith.
func (c *Config) Validate() error { return c.ValidateWith(nil) }

// ValidateWith is Validate that also checks every dialplan route's
// application with check (the server's application registry). Every
// problem is reported, not just the first.
func (c *Config) ValidateWith(check dialplan.AppCheck) error {
	var errs []error
	if p := c.NATS.Prefix; p != "" && (!strings.HasSuffix(p, ".") || strings.ContainsAny(p, "*> \t\r\n") || strings.Contains(p, "..") || strings.HasPrefix(p, ".")) {
		errs = append(errs, fmt.Errorf("nats.prefix %q: want subject tokens ending in a dot, without wildcards or spaces (e.g. \"ari.\")", p))
	}
	if c.NodeID != "" {
		if err := CheckNodeID(c.NodeID); err != nil {
			errs = append(errs, err)
		}
	}
	sipHost, sipPort, sipErr := checkListen("sip.listen", c.SIP.Listen)
	if sipErr != nil {
		errs = append(errs, sipErr)
	}
	_, httpPort, err := checkListen("http.listen", c.HTTP.Listen)
	if err != nil {
		errs = append(errs, err)
	}
	if sipPort != 0 && sipPort == httpPort && slices.Contains(c.SIP.Transports, "tcp") && sameHost(c.SIP.Listen, c.HTTP.Listen) {
		errs = append(errs, fmt.Errorf("http.listen: %s is also sip.listen's TCP port", c.HTTP.Listen))
	}
	if c.HTTP.MinFreeDiskMB < 0 {
		errs = append(errs, fmt.Errorf("http.min_free_disk_mb: %d is negative (0 turns the check off)", c.HTTP.MinFreeDiskMB))
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
	errs = append(errs, c.checkRTPPorts(sipPort)...)
	if c.SIP.SessionExpiresSeconds < 0 || c.SIP.MinSESeconds < 0 {
		errs = append(errs, fmt.Errorf("sip.session_expires_seconds, sip.min_se_seconds: negative"))
	} else if c.SIP.SessionExpiresSeconds > 0 && c.SIP.SessionExpiresSeconds < max(c.SIP.MinSESeconds, 1) {
		errs = append(errs, fmt.Errorf("sip.session_expires_seconds: %d is below sip.min_se_seconds %d", c.SIP.SessionExpiresSeconds, c.SIP.MinSESeconds))
	}
	if c.RTP.TimeoutSeconds < 0 {
		errs = append(errs, fmt.Errorf("rtp.timeout_seconds: %d is negative (0 turns the timeout off)", c.RTP.TimeoutSeconds))
	}
	errs = append(errs, c.checkOzeki()...)
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
	errs = append(errs, c.SIP.Registrar.validate()...)
	seenAlg := map[string]bool{}
	for _, a := range c.SIP.DigestAlgorithms {
		if a != "MD5" && a != "SHA-256" || seenAlg[a] {
			errs = append(errs, fmt.Errorf("sip.digest_algorithms: %q is not MD5 or SHA-256, or is listed twice", a))
		}
		seenAlg[a] = true
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
	if err := checkRTPHost(c.RTP.Host); err != nil && (sipErr == nil || c.RTP.Host != sipHost) {
		errs = append(errs, err)
	}
	if c.Twilio.MaxRecordingsPerCall < -1 {
		errs = append(errs, fmt.Errorf("twilio.max_recordings_per_call: %d (0: 1, -1: no bound)", c.Twilio.MaxRecordingsPerCall))
	}
	if c.Catalog.DeletedRetentionDays < -1 {
		errs = append(errs, fmt.Errorf("catalog.deleted_retention_days: %d (0: 40 days, -1: forever)", c.Catalog.DeletedRetentionDays))
	}
	if u := c.HTTP.PublicURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		errs = append(errs, fmt.Errorf("http.public_url: %q is not an http(s) URL", u))
	}
	if n := c.Catalog.NodeLostSeconds; n < -1 {
		errs = append(errs, fmt.Errorf("catalog.node_lost_seconds: %d (0: 300 s, -1: never)", n))
	} else if dead := c.Webhook.NodeDeadSeconds; n > 0 && n < cmp.Or(max(dead, 0), 30) {
		errs = append(errs, fmt.Errorf("catalog.node_lost_seconds: %d is shorter than webhook.node_dead_seconds (%d s): a live node between two heartbeats would be taken for lost", n, cmp.Or(max(dead, 0), 30)))
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
	if s3 := c.Catalog.S3; s3.Endpoint != "" {
		if s3.Bucket == "" {
			errs = append(errs, errors.New("catalog.s3: endpoint without bucket"))
		}
		if (s3.AccessKey == "") != (s3.SecretKey == "") {
			// neither: the usual credential chain (AWS_ACCESS_KEY_ID...,
			// ~/.aws/credentials, the instance's role)
			errs = append(errs, errors.New("catalog.s3: access_key and secret_key go together (or set neither to use the environment's credential chain)"))
		}
		if strings.Contains(s3.Endpoint, "://") {
			errs = append(errs, fmt.Errorf("catalog.s3.endpoint: %q must be host:port without a scheme (use_ssl: true for https)", s3.Endpoint))
		}
	}
	if dsn := c.Catalog.Database; dsn != "" && !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		errs = append(errs, errors.New("catalog.database: only PostgreSQL URLs (postgres://user:password@host:5432/db) are supported"))
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
	if b := c.ARI.AudioSocketBatchMs; b < 0 || b > 1000 || b%20 != 0 {
		errs = append(errs, fmt.Errorf("ari.audiosocket_batch_ms: %d must be a multiple of 20 from 0 to 1000", b))
	}
	seenWS := map[string]bool{}
	for i, w := range c.ARI.WebSocketClients {
		u, err := url.Parse(w.URI)
		switch {
		case w.ID == "":
			errs = append(errs, fmt.Errorf("ari.websocket_clients[%d]: id is required", i))
		case seenWS[w.ID]:
			errs = append(errs, fmt.Errorf("ari.websocket_clients[%d]: id %q appears twice", i, w.ID))
		case err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "":
			errs = append(errs, fmt.Errorf("ari.websocket_clients[%d] (%s): uri %q must be ws://host[:port]/path or wss://…", i, w.ID, w.URI))
		}
		seenWS[w.ID] = true
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
	switch c.Recording.Checksum {
	case ChecksumOnDemand, ChecksumBackground:
	default:
		errs = append(errs, fmt.Errorf("recording.checksum: %q is not one of %s (default) or %s", c.Recording.Checksum, ChecksumOnDemand, ChecksumBackground))
	}
	if l := c.Recording.DegradedLossPercent; l < 0 || l > 100 || l != l {
		errs = append(errs, fmt.Errorf("recording.degraded_loss_percent: %v is not a percentage from 0 to 100 (0 never reports)", l))
	}
	if c.Recording.MaxDurationSeconds <= 0 {
		errs = append(errs, fmt.Errorf("recording.max_duration_seconds: %d; every recording needs a maximum length (default %d)", c.Recording.MaxDurationSeconds, DefaultMaxRecordingSeconds))
	}
	errs = append(errs, c.checkWazo()...)
	errs = append(errs, c.checkTrunks()...)
	errs = append(errs, c.checkCallRecording()...)
	errs = append(errs, c.checkTLS()...)
	errs = append(errs, c.checkDialplan(check)...)
	return errors.Join(errs...)
}

// Rules is the dialplan in the form dialplan.Compile takes.
func (c *Config) Rules() []dialplan.Rule {
	rules := make([]dialplan.Rule, len(c.Dialplan))
	for i, r := range c.Dialplan {
		rules[i] = dialplan.Rule{Exten: r.Exten, App: r.App, Context: r.Context, Account: r.Account,
			MaxDuration: time.Duration(r.MaxDurationSeconds) * time.Second, Variables: r.Variables}
	}
	return rules
}

// checkDialplan compiles the dialplan, checking each route's application
// with check, and checks the routes' settings: every problem, in the order
// of the rules, as "dialplan rule N (exten "E"): ...".
func (c *Config) checkDialplan(check dialplan.AppCheck) []error {
	var probs []*dialplan.RuleError
	if _, err := dialplan.CompileChecked(c.Rules(), check); err != nil {
		parts := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			parts = j.Unwrap()
		}
		for _, e := range parts {
			var re *dialplan.RuleError
			if !errors.As(e, &re) {
				re = &dialplan.RuleError{Err: e}
			}
			probs = append(probs, re)
		}
	}
	for i, r := range c.Dialplan {
		bad := func(format string, a ...any) {
			probs = append(probs, &dialplan.RuleError{Rule: i + 1, Exten: r.Exten, Err: fmt.Errorf(format, a...)})
		}
		switch {
		case r.MaxDurationSeconds < 0:
			bad("max_duration_seconds: %d is negative", r.MaxDurationSeconds)
		case r.MaxDurationSeconds > 0 && !strings.HasPrefix(strings.TrimSpace(r.App), "Record("):
			bad("max_duration_seconds: only Record() routes record by themselves (app is %s)", r.App)
		case c.Recording.MaxDurationSeconds > 0 && r.MaxDurationSeconds > c.Recording.MaxDurationSeconds:
			bad("max_duration_seconds: %d exceeds recording.max_duration_seconds (%d)", r.MaxDurationSeconds, c.Recording.MaxDurationSeconds)
		}
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Rule < probs[j].Rule })
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = fmt.Errorf("dialplan %w", p)
	}
	return errs
}

// checkListen checks a listen address: host:port with a decimal port in
// 0-65535 (0: any free port) and a host that is an IP address or a name.
// It returns the host and port.
func checkListen(field, hostport string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %q: want host:port (e.g. 127.0.0.1:5060)", field, hostport)
	}
	port, err := strconv.Atoi(portStr)
	switch {
	case err != nil || strings.TrimLeft(portStr, "0123456789") != "":
		return host, 0, fmt.Errorf("%s: %q: port %q is not a number", field, hostport, portStr)
	case port > 65535:
		return host, 0, fmt.Errorf("%s: %q: port %d is out of range (0-65535)", field, hostport, port)
	}
	if host != "" && net.ParseIP(host) == nil && !netguard.ValidHostName(host) {
		return host, port, fmt.Errorf("%s: %q: %q is not an IP address or host name", field, hostport, host)
	}
	if err := checkLocalIP(host); err != nil {
		return host, port, fmt.Errorf("%s: %q: %w", field, hostport, err)
	}
	return host, port, nil
}

// checkLocalIP: an IP address to bind to must be this machine's (or
// loopback, or unspecified: every interface), or binding fails at start.
// Host names and an unreadable interface list are not checked.
func checkLocalIP(host string) error {
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return nil
		}
	}
	return fmt.Errorf("%s is not an address of this machine", host)
}

// sameHost reports whether two listen addresses may share a socket.
func sameHost(a, b string) bool {
	ha, _, _ := net.SplitHostPort(a)
	hb, _, _ := net.SplitHostPort(b)
	unspec := func(h string) bool { ip := net.ParseIP(h); return h == "" || ip != nil && ip.IsUnspecified() }
	return ha == hb || unspec(ha) || unspec(hb)
}

// checkRTPPorts checks rtp.port_min/port_max as the RTP port allocator
// takes them: an even RTP port and the odd RTCP port above it must fit, and
// the range must not hold the SIP port.
func (c *Config) checkRTPPorts(sipPort int) []error {
	lo, hi := c.RTP.PortMin, c.RTP.PortMax
	var errs []error
	if lo < 1 || lo > 65535 {
		errs = append(errs, fmt.Errorf("rtp.port_min: %d is out of range (1-65535)", lo))
	}
	if hi < 1 || hi > 65535 {
		errs = append(errs, fmt.Errorf("rtp.port_max: %d is out of range (1-65535)", hi))
	}
	if len(errs) > 0 {
		return errs
	}
	if lo >= hi {
		return []error{fmt.Errorf("rtp: port range %d-%d: port_min must be below port_max", lo, hi)}
	}
	if even := lo + lo%2; even+1 > hi {
		return []error{fmt.Errorf("rtp: port range %d-%d holds no RTP/RTCP pair (an even port and the odd one above it)", lo, hi)}
	}
	if sipPort >= lo && sipPort <= hi && slices.Contains(c.SIP.Transports, "udp") {
		errs = append(errs, fmt.Errorf("rtp: port range %d-%d holds the SIP port %d", lo, hi, sipPort))
	}
	return errs
}

// checkRTPHost checks the address RTP binds to and offers in SDP.
func checkRTPHost(host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return fmt.Errorf("rtp.host: %s would be offered in SDP as the media address, which callers read as hold; set rtp.host to this machine's address", host)
		}
		if err := checkLocalIP(host); err != nil {
			return fmt.Errorf("rtp.host: %w", err)
		}
		return nil
	}
	if host == "" {
		return errors.New("rtp.host: empty (sip.listen has no host); set rtp.host to this machine's address")
	}
	if !netguard.ValidHostName(host) {
		return fmt.Errorf("rtp.host: %q is not an IP address or host name", host)
	}
	if ips, err := net.LookupIP(host); err != nil || len(ips) == 0 {
		// The RTP port allocator resolves it at start, as here.
		return fmt.Errorf("rtp.host: %q does not resolve", host)
	}
	return nil
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

// NATS is the node's NATS connection (see Config.NATS).
type NATS struct {
	// URL of the NATS server(s), comma-separated.
	URL string `yaml:"url"`
	// Prefix begins every subject, as ari-proxy's prefix option: "ari."
	// when empty. Nodes see each other only under the same prefix, so one
	// NATS can carry several clusters.
	Prefix string `yaml:"prefix"`
}

// SubjectPrefix is Prefix or its default, "ari.".
func (n NATS) SubjectPrefix() string {
	if n.Prefix == "" {
		return "ari."
	}
	return n.Prefix
}

// Bounds of the registrar's settings.
const (
	maxRegistrarExpires  = 7 * 24 * 3600
	maxRegistrarContacts = 1000
)

func (r SIPRegistrar) validate() []error {
	var errs []error
	bad := func(key string, v any, want string) {
		errs = append(errs, fmt.Errorf("sip.registrar.%s: %v is %s", key, v, want))
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"min_expires_seconds", r.MinExpiresSeconds}, {"max_expires_seconds", r.MaxExpiresSeconds},
		{"default_expires_seconds", r.DefaultExpiresSeconds}} {
		if f.v < 1 || f.v > maxRegistrarExpires {
			bad(f.key, f.v, fmt.Sprintf("outside 1-%d", maxRegistrarExpires))
		}
	}
	if r.MinExpiresSeconds > r.MaxExpiresSeconds {
		bad("min_expires_seconds", r.MinExpiresSeconds, fmt.Sprintf("above max_expires_seconds (%d)", r.MaxExpiresSeconds))
	}
	if r.DefaultExpiresSeconds < r.MinExpiresSeconds || r.DefaultExpiresSeconds > r.MaxExpiresSeconds {
		bad("default_expires_seconds", r.DefaultExpiresSeconds,
			fmt.Sprintf("outside min_expires_seconds-max_expires_seconds (%d-%d)", r.MinExpiresSeconds, r.MaxExpiresSeconds))
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"max_contacts_per_user", r.MaxContactsPerUser}, {"max_contacts_per_request", r.MaxContactsPerRequest}} {
		if f.v < 1 || f.v > maxRegistrarContacts {
			bad(f.key, f.v, fmt.Sprintf("outside 1-%d", maxRegistrarContacts))
		}
	}
	if !(r.RegistersPerSecondPerSource > 0) || r.RegistersPerSecondPerSource > 1e6 {
		bad("registers_per_second_per_source", r.RegistersPerSecondPerSource, "not above 0 (and at most 1000000)")
	}
	if r.RegisterBurstPerSource < 1 || r.RegisterBurstPerSource > 1e6 {
		bad("register_burst_per_source", r.RegisterBurstPerSource, "outside 1-1000000")
	}
	if r.AuthFailureThreshold < 1 || r.AuthFailureThreshold > 1e5 {
		bad("auth_failure_threshold", r.AuthFailureThreshold, "outside 1-100000")
	}
	if r.AuthFailureWindowSeconds < 1 || r.AuthFailureWindowSeconds > 86400 {
		bad("auth_failure_window_seconds", r.AuthFailureWindowSeconds, "outside 1-86400")
	}
	if r.NonceTTLSeconds < 10 || r.NonceTTLSeconds > 86400 {
		bad("nonce_ttl_seconds", r.NonceTTLSeconds, "outside 10-86400")
	}
	return errs
}
