// Package server wires tapedeck's parts together: SIP endpoint, call
// manager, event bus and HTTP APIs; it starts them, drains them on
// shutdown and stops them in a fixed order.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/api/ari"
	"github.com/tapedeck/tapedeck/internal/api/confd"
	"github.com/tapedeck/tapedeck/internal/api/restcomm"
	"github.com/tapedeck/tapedeck/internal/api/twilio"
	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/dialplan"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/recname"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sip"
	"github.com/tapedeck/tapedeck/internal/sounds"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
	"github.com/tapedeck/tapedeck/internal/web"
)

// MaxHTTPHeaderBytes bounds the request line and headers of every HTTP
// listener (net/http's default is 1 MiB): no API needs more than a few KiB,
// and a peer sending more gets 431 instead of holding server memory.
const MaxHTTPHeaderBytes = 64 << 10

// Version is the tapedeck version reported by the APIs.
var Version = "0.1.0-dev"

// Server is one running tapedeck node.
type Server struct {
	// eps are the users' endpoint states (endpointstate.go).
	eps endpointStates
	cfg config.Config
	log *slog.Logger
	bus *event.Bus
	// journal lists this node's recordings in progress (crash recovery).
	journal *recorder.Journal
	calls   *call.Manager
	sip     *sip.Endpoint
	ari     *ari.Server
	sounds  *sounds.Index
	meta    meta.Store
	catalog *catalog.Service
	users   *users.Service
	namer   *recname.Namer // names policy recordings' files (call_recording)
	http    *http.Server
	hl      net.Listener
	poller  *rtp.Poller
	ozeki   *ozekiParts
	web     *web.Handler // the page at /
	// reg answers REGISTER; dir is the users directory it and the calls
	// consult (nil: nobody can register).
	reg       *sip.Registrar
	dir       call.Directory
	stopPrune chan struct{}
	pruned    chan struct{}
	// stopReady ends the readiness loop feeding SIP OPTIONS (readyLoop).
	stopReady, readyDone chan struct{}
	// minFreeDiskMB is http.min_free_disk_mb, read by that loop and readyz.
	minFreeDiskMB atomic.Int64
	// stopReconcile ends the catalog's periodic reconcile.
	stopReconcile context.CancelFunc
	reconciled    chan struct{}
	// draining is set when Shutdown starts (readyz, metrics); closed by
	// Close.
	draining, closed atomic.Bool
	nats             *natsBridge // ARI events to NATS, when configured
	// cluster relays ARI between the nodes on NATS (with nats).
	cluster *cluster
	// files serves this node's recording files to the other nodes and
	// theirs to this one (clustered, over NATS).
	files *peerFiles
	// twRelay relays Twilio's live-call control to the node with the call.
	twRelay *twilioRelay
}

// New builds a server from a validated configuration.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	plan, err := dialplan.CompileChecked(cfg.Rules(), call.AppChecker(call.CheckEnv{RecordingsDir: cfg.RecordingsDir()}))
	if err != nil {
		return nil, fmt.Errorf("dialplan: %w", err)
	}
	ports, err := rtp.NewPorts(cfg.RTP.Host, cfg.RTP.PortMin, cfg.RTP.PortMax)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.Catalog.SignKey == "" {
		// Signed media links must survive a restart: the key is kept in
		// the data directory (owner-only) unless configured.
		if cfg.Catalog.SignKey, err = meta.PersistentKey(filepath.Join(cfg.DataDir, "signing.key")); err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
	}
	if err := config.ResolveNodeID(&cfg); err != nil {
		return nil, fmt.Errorf("node id: %w", err)
	}
	entity := cfg.ARI.EntityID
	if entity == "" {
		entity = entityID(cfg.NodeID)
	}
	s := &Server{cfg: cfg, log: log}
	s.minFreeDiskMB.Store(int64(cfg.HTTP.MinFreeDiskMB))
	s.bus = event.NewBus(entity)
	if cfg.NATS.URL != "" {
		if s.nats, err = startNATS(cfg.NATS.URL, cfg.NATS.SubjectPrefix(), entity, s.bus, log); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
	}
	s.bus.SetDeclared(ari.EventDeclared)
	recDir := cfg.RecordingsDir()
	if err := os.MkdirAll(recDir, 0o700); err != nil {
		return nil, fmt.Errorf("recordings dir: %w", err)
	}
	recovered, err := recorder.Recover(recDir)
	if err != nil {
		log.Error("recovering unfinished recordings", "err", err)
	}
	// This node's journal of the recordings in progress (marker files
	// before it, which Recover above still handles).
	journal, err := recorder.OpenJournal(recDir, cfg.NodeID)
	if err != nil {
		return nil, fmt.Errorf("recordings journal: %w", err)
	}
	jrec, err := journal.Recover()
	if err != nil {
		log.Error("recovering unfinished recordings", "err", err)
	}
	recovered = append(recovered, jrec...)
	s.journal = journal
	for _, r := range recovered {
		log.Warn("recovered unfinished recording after a crash", "name", r.Name, "format", r.Format, "path", r.Path, "bytes", r.Bytes, "duration", r.Duration)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := OpenMeta(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog database: %w", err)
	}
	bs, err := openBlob(cfg)
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("catalog S3: %w", err)
	}
	s.meta = ms
	s.catalog = &catalog.Service{Meta: ms, Blob: bs, Root: recDir, Log: log, Node: cfg.NodeID,
		DeletedRetention: time.Duration(cfg.Catalog.DeletedRetentionDays) * 24 * time.Hour,
		LostAfter:        cfg.NodeLostAfter(),
		HashInBackground: cfg.Recording.Checksum == config.ChecksumBackground}
	if _, err := s.catalog.DefaultAccount(ctx); err != nil {
		ms.Close()
		return nil, fmt.Errorf("catalog: default account: %w", err)
	}
	if err := s.catalog.ReleaseNodeNames(ctx); err != nil {
		ms.Close()
		return nil, fmt.Errorf("catalog: recording names: %w", err)
	}
	us, err := meta.Users(ms)
	if err != nil {
		ms.Close()
		return nil, err
	}
	s.users = users.New(us)
	if s.namer, err = cfg.Namer(); err != nil {
		ms.Close()
		return nil, fmt.Errorf("call_recording: %w", err)
	}
	s.sounds = sounds.NewIndex(cfg.SoundDirs())
	allow, err := netguard.Parse(cfg.Sounds.HTTPAllow)
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("sounds.http_allow: %w", err)
	}
	res := newResolver(s.sounds, filepath.Join(cfg.DataDir, "cache", "http"), 10<<20, allow, func() call.Calls { return s.calls })
	res.speech = speechSynth(cfg.DataDir)
	if iv := cfg.RTP.ReadIntervalMs; iv > 0 {
		s.poller, err = rtp.NewPoller(time.Duration(cfg.RTP.StepMs)*time.Millisecond,
			time.Duration(iv)*time.Millisecond, runtime.GOMAXPROCS(0)/2)
		if err != nil {
			log.Warn("RTP is read by a goroutine per socket", "err", err)
		}
	}
	wsClients := map[string]call.MediaWebSocketClient{}
	for _, w := range cfg.ARI.WebSocketClients {
		wsClients[w.ID] = call.MediaWebSocketClient{URI: w.URI, Protocols: w.Protocols, Username: w.Username, Password: w.Password}
	}
	s.calls = call.NewManager(call.Options{
		MediaWebSocketClients: wsClients,
		AudioSocketBatch:      cfg.ARI.AudioSocketBatchMs / 20,
		Poller:                s.poller,
		Media:                 res,
		RecordingsDir:         recDir,
		MOHDir:                cfg.MOHDir(),
		MaxRecording:          time.Duration(cfg.Recording.MaxDurationSeconds) * time.Second,
		FsyncInterval:         fsyncInterval(cfg.Recording.FsyncIntervalSeconds),
		DegradedLossPercent:   cfg.Recording.DegradedLossPercent,
		Logger:                log,
		Bus:                   s.bus,
		Plan:                  plan,
		Ports:                 ports,
		Codecs:                cfg.RTP.Codecs,
		DTMFType:              uint8(cfg.RTP.DTMFPayloadType),
		NodeID:                cfg.NodeID,
		Journal:               s.journal,
		RTPTimeout:            time.Duration(cfg.RTP.TimeoutSeconds) * time.Second,
		OnCallEnded:           func(r call.CallRecord) { s.writeCDR(r) },
		EndpointChannels:      s.endpointChannels,
	})
	s.sip, err = sip.New(sip.Options{
		Listen:       cfg.SIP.Listen,
		Transports:   cfg.SIP.Transports,
		ExternalHost: cfg.SIP.ExternalHost,
		UserAgent:    cfg.SIP.UserAgent,
		Logger:       log,

		MalformedLogLevel: logLevel(cfg.SIP.MalformedLogLevel),
		TCPIdleTimeout:    orNever(time.Duration(cfg.SIP.TCP.IdleTimeoutSeconds) * time.Second),
		TCPMaxConns:       cfg.SIP.TCP.MaxConnections,
		TCPMaxPerSource:   orNever(cfg.SIP.TCP.MaxConnectionsPerSource),
		SessionExpires:    orNever(time.Duration(cfg.SIP.SessionExpiresSeconds) * time.Second),
		SessionMinSE:      time.Duration(cfg.SIP.MinSESeconds) * time.Second,
	}, s.calls)
	if err != nil {
		if s.poller != nil {
			s.poller.Close()
		}
		ms.Close()
		return nil, err
	}
	s.calls.SetDialer(s.sip)
	var loc sip.LocationStore
	if rs, ok := ms.(meta.Registrations); ok {
		loc = locationStore{rs: rs, node: cfg.NodeID}
	}
	regc := cfg.SIP.Registrar
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	s.reg = sip.NewRegistrar(sip.NewAuthenticator(sip.CredentialsFunc(s.sipPassword), sip.DigestOptions{Realm: cfg.SIP.Realm,
		Algorithms: cfg.SIP.DigestAlgorithms, NonceTTL: sec(regc.NonceTTLSeconds), FailureWindow: sec(regc.AuthFailureWindowSeconds),
		FailureThreshold: regc.AuthFailureThreshold}, log), loc,
		sip.RegistrarOptions{MinExpires: sec(regc.MinExpiresSeconds), MaxExpires: sec(regc.MaxExpiresSeconds),
			DefaultExpires: sec(regc.DefaultExpiresSeconds), MaxContacts: regc.MaxContactsPerUser, MaxRequestContacts: regc.MaxContactsPerRequest,
			RatePerSource: regc.RegistersPerSecondPerSource, BurstPerSource: regc.RegisterBurstPerSource}, log)
	if err := s.reg.Load(ctx); err != nil {
		log.Error("registrar: registrations not loaded; phones register again", "err", err)
	}
	s.sip.SetRegistrar(s.reg)
	s.startEndpointStates()
	if us, err := meta.Users(ms); err == nil {
		s.dir = storeDirectory{us}
	}
	s.calls.SetUsers(lateDirectory{s}, s.reg, s.reg.Auth())
	trunks := make([]call.Trunk, len(cfg.Trunks))
	for i, t := range cfg.Trunks {
		trunks[i] = call.Trunk{Name: t.Name, Host: t.Address, Port: t.Port, Transport: t.Transport,
			Username: t.Username, Password: t.Password, DIDs: t.DIDs}
	}
	if namer, err := cfg.Namer(); err != nil {
		log.Error("call_recording: policy recordings get the default name", "err", err)
	} else {
		s.calls.SetPolicyRecording(call.PolicyRecording{Namer: namer, Stereo: cfg.CallRecording.Stereo})
	}
	if err := s.calls.SetTrunks(trunks); err != nil {
		log.Error("trunks: calls from and to a trunk whose address does not resolve fail", "err", err)
	}
	s.stopPrune, s.pruned = make(chan struct{}), make(chan struct{})
	go s.pruneRegistrations(time.Minute)
	s.calls.SetCatalog(s.catalog)
	s.ari = ari.New(ari.Options{
		Sounds:         s.sounds,
		Users:          cfg.ARICredentials(),
		Calls:          s.calls,
		Bus:            s.bus,
		Logger:         log,
		EventQueue:     cfg.ARI.EventQueue,
		Version:        Version,
		StartedAt:      time.Now(),
		SystemName:     cfg.NodeID,
		AllowedOrigins: cfg.ARI.AllowedOrigins,
		Endpoints:      s.endpoints,
	})
	mux := http.NewServeMux()
	if s.nats != nil {
		if s.cluster, err = startCluster(s.nats.nc, cfg.NATS.SubjectPrefix(), s.bus, entity, cfg.NodeID, s.ari, s.refuseCreates, log); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		mux.Handle("/ari/", s.ariHandler(s.cluster))
		if s.files, err = startPeerFiles(s.nats.nc, cfg.NATS.SubjectPrefix(), cfg.NodeID, s.catalog, log); err != nil {
			s.cluster.close()
			return nil, fmt.Errorf("nats: %w", err)
		}
		s.catalog.Peers = s.files
	} else {
		mux.Handle("/ari/", s.ari)
	}
	// chan_websocket's media URI: the application's end of a websocket
	// server external media channel.
	mux.Handle("/media/", s.calls.MediaWebSocketHandler())
	rc := restcomm.New(restcomm.Options{Catalog: s.catalog, Logger: log, MediaAccess: cfg.Catalog.MediaAccess,
		SignKey: []byte(cfg.Catalog.SignKey), SignedTTL: time.Duration(cfg.Catalog.SignedURLTTL) * time.Second,
		PublicURL: cfg.HTTP.PublicURL})
	mux.Handle("/restcomm/", rc)
	mux.Handle("/"+restcomm.APIVersion+"/", rc)
	tw := twilio.New(twilio.Options{Catalog: s.catalog, Logger: log,
		PublicURL: cfg.HTTP.PublicURL, MediaAccess: cfg.Catalog.MediaAccess, CacheDir: filepath.Join(cfg.DataDir, "cache", "mp3"),
		Calls: s.calls, MaxRecordingsPerCall: cfg.Twilio.MaxRecordingsPerCall})
	if s.cluster != nil {
		// Live-call control of a call on another node goes to that node.
		if s.twRelay, err = startTwilioRelay(s.cluster, tw, s.calls, log); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		mux.Handle("/"+twilio.APIVersion+"/", s.twRelay.handler())
	} else {
		mux.Handle("/"+twilio.APIVersion+"/", tw)
	}
	admins := make([]confd.Admin, len(cfg.Wazo.Admins))
	for i, a := range cfg.Wazo.Admins {
		admins[i] = confd.Admin{Name: a.Name, Password: a.Password}
	}
	wz := confd.New(confd.Options{Users: s.users, Admins: admins, TenantUUID: cfg.Wazo.TenantUUID,
		StackUUID: stackUUID(entity), Logger: log,
		TokenExpiration:    time.Duration(cfg.Wazo.TokenExpirationSeconds) * time.Second,
		MaxTokenExpiration: time.Duration(cfg.Wazo.MaxTokenExpirationSeconds) * time.Second})
	mux.Handle(confd.ConfdPrefix, wz)
	mux.Handle(confd.ConfdDirectPrefix, wz)
	mux.Handle(confd.AuthPrefix, wz)
	webAdmins := make([]web.Admin, len(admins))
	for i, a := range admins {
		webAdmins[i] = web.Admin{Name: a.Name, Password: a.Password}
	}
	s.web = web.New(web.Options{Catalog: s.catalog, Calls: s.calls, Bus: s.bus, Admins: webAdmins,
		CacheDir: filepath.Join(cfg.DataDir, "cache", "web"), Logger: log})
	s.web.Register(mux)
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", s.metricsHandler())
	if err := s.newOzeki(mux, ms, res.speech); err != nil {
		s.sip.Close()
		if s.poller != nil {
			s.poller.Close()
		}
		ms.Close()
		return nil, err
	}
	tw.SetWebhook(s.ozeki.sender) // recording status callbacks, durable and retried
	// A recording settled for its lost node: its Twilio status callback,
	// kept in the catalog, is queued here in the transaction that settles
	// it (both or neither), and sent from here; the applications that
	// followed it hear it failed (over NATS).
	s.catalog.LostNotices = func(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error) {
		if strings.HasPrefix(row.Name, twilio.NamePrefix) {
			return tw.LostNotices(ctx, row)
		}
		return s.ozeki.api.FinalNotices(ctx, row) // Ozeki's RecordCompleted, once
	}
	// A recording's end: its final status callback (Twilio's, or Ozeki's
	// RecordCompleted) is queued in the transaction that writes its final
	// row (both or neither), here or by the restart that settles the row
	// of a killed run. Only the recordings an API started look one up.
	s.catalog.FinalNotices = func(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error) {
		if strings.HasPrefix(row.Name, twilio.NamePrefix) {
			return tw.FinalNotices(ctx, row)
		}
		return s.ozeki.api.FinalNotices(ctx, row)
	}
	s.catalog.NoticesQueued = s.ozeki.sender.Wake
	s.catalog.OnLost = func(lost string, row meta.Recording) {
		if s.cluster != nil {
			s.cluster.publishLost(lost, row)
		}
		s.ozeki.sender.Wake() // what was queued with the row
	}
	// The recordings a killed run left, repaired above (Recover), are
	// catalogued now that their final status callbacks are queued with
	// their rows (FinalNotices above).
	for _, r := range recovered {
		err := s.catalog.Recovered(ctx, catalog.Info{Name: r.Name, Path: r.Path, Format: r.Format.Name, ContentType: r.Format.ContentType,
			Source: "ari", Duration: r.Duration, Channels: 1})
		if err != nil {
			log.Error("catalog: recovered recording not catalogued", "name", r.Name, "err", err)
		}
	}
	// Rows a previous run left in progress (killed, or its last catalog
	// writes failed, e.g. on a full disk) are settled from their files
	// now, once their final status callbacks can be queued with them
	// (FinalNotices above); what cannot be written yet is retried every
	// reconcile interval.
	if err := s.catalog.Reconcile(ctx); err != nil {
		log.Error("catalog: reconcile at start-up incomplete; retrying periodically", "err", err)
	}
	every := time.Duration(cfg.Catalog.ReconcileInterval) * time.Second
	if every <= 0 {
		every = 30 * time.Second
	}
	rctx, stop := context.WithCancel(context.Background())
	s.stopReconcile, s.reconciled = stop, make(chan struct{})
	go func() {
		defer close(s.reconciled)
		s.catalog.Run(rctx, every)
	}()
	nodes.track(s)
	s.http = &http.Server{Handler: s.instrument(mux), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: MaxHTTPHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	return s, nil
}

// healthz is public liveness ("ok", or {"status":"ok"} for JSON) and, for
// ARI credentials (Basic or api_key), the details: channels, goroutines,
// Go heap. Wrong credentials answer 401.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	wantJSON := r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
	_, _, basic := r.BasicAuth()
	if !basic && !r.URL.Query().Has("api_key") {
		if wantJSON {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, `{"status":"ok"}`)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
		return
	}
	if !s.ari.Authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="tapedeck"`)
		http.Error(w, "Authentication required", http.StatusUnauthorized)
		return
	}
	if wantJSON {
		w.Header().Set("Content-Type", "application/json")
		live, held := goMemory()
		sipStats, _ := json.Marshal(s.sip.Stats())
		fmt.Fprintf(w, `{"status":"ok","channels":%d,"goroutines":%d,"heap_live_bytes":%d,"go_held_bytes":%d,"sip":%s}`+"\n", s.calls.Count(), runtime.NumGoroutine(), live, held, sipStats)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "ok %d channels %d goroutines\n", s.calls.Count(), runtime.NumGoroutine())
}

// logLevel maps a validated level name to its slog.Level.
func logLevel(name string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(name))
	return l
}

// orNever maps a configured 0 ("none") to sip.Options' -1 (0 there is
// "the default").
func orNever[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// goMemory reads runtime/metrics (no stop-the-world): live is the Go heap
// marked live by the last collection, held is the memory the Go runtime
// holds from the OS (mapped, minus what it has released back). RSS above
// held is memory outside the Go runtime (SQLite's allocator, the binary).
func goMemory() (live, held uint64) {
	sample := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(sample)
	v := func(i int) uint64 {
		if sample[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[i].Value.Uint64()
	}
	return v(0), v(1) - v(2)
}

// entityID derives a stable MAC-like id from the host name and the node
// id, so that two nodes on one host report different asterisk_ids (the id
// ari-proxy names a node by).
func entityID(node string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte("tapedeck:" + host + "/" + node))
	parts := make([]string, 6)
	for i := range parts {
		parts[i] = fmt.Sprintf("%02x", sum[i])
	}
	return strings.Join(parts, ":")
}

// stackUUID is the node's Wazo stack uuid (xivo_uuid), stable for an
// entity id.
func stackUUID(entity string) string {
	sum := sha256.Sum256([]byte("tapedeck-stack:" + entity))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Start binds SIP and HTTP and serves in the background.
func (s *Server) Start() error {
	if err := s.sip.Start(); err != nil {
		return err
	}
	s.stopReady, s.readyDone = make(chan struct{}), make(chan struct{})
	go s.readyLoop(time.Second)
	l, err := net.Listen("tcp", s.cfg.HTTP.Listen)
	if err != nil {
		s.sip.Close()
		return fmt.Errorf("http listen: %w", err)
	}
	s.hl = l
	if s.cfg.HTTP.TLS() {
		// HTTPS (Wazo's APIs are only reached over it): the pair is loaded
		// now, so a bad one fails the start rather than every request.
		cert, err := tls.LoadX509KeyPair(s.cfg.HTTP.TLSCertFile, s.cfg.HTTP.TLSKeyFile)
		if err != nil {
			l.Close()
			s.sip.Close()
			return fmt.Errorf("http tls: %w", err)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}})
	}
	if err := s.startOzeki(); err != nil {
		l.Close()
		s.sip.Close()
		return err
	}
	go func() {
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("tapedeck started", "version", Version, "sip", s.sip.Addr(), "transports", strings.Join(s.cfg.SIP.Transports, ","), "http", l.Addr().String(), "https", s.cfg.HTTP.TLS(), "data", s.cfg.DataDir, "rtp_ports", fmt.Sprintf("%d-%d", s.cfg.RTP.PortMin, s.cfg.RTP.PortMax))
	s.logWhereThingsAre(l.Addr().String())
	return nil
}

// logWhereThingsAre tells a newcomer what the node offers: where ARI and
// the other HTTP endpoints are, with which credentials, and what each
// dialplan route does (or that there is none, so every call gets 404).
func (s *Server) logWhereThingsAre(httpAddr string) {
	scheme := "http"
	if s.cfg.HTTP.TLS() {
		scheme = "https"
	}
	base := scheme + "://" + httpAddr
	creds := "configured ari.users"
	if len(s.cfg.ARI.Users) == 0 {
		creds = "asterisk/asterisk (default, accepted only on loopback)"
	}
	s.log.Info("HTTP endpoints", "ari", base+"/ari", "ari_events", strings.Replace(base, "http", "ws", 1)+"/ari/events?app=NAME", "ari_credentials", creds,
		"recordings_api", base+"/restcomm/2012-04-24/Accounts/{AccountSid}/Recordings.json (tapedeck accounts list prints the Sids; accounts rotate SID prints a new token)",
		"metrics", base+"/metrics", "health", base+"/healthz", "ready", base+"/readyz")
	if len(s.cfg.Dialplan) == 0 {
		s.log.Warn("no dialplan routes: every call gets 404 until the configuration has some (see config-sample.yaml)")
	}
	for _, r := range s.cfg.Dialplan {
		s.log.Info("dialplan route", "call", "sip:"+r.Exten+"@"+s.sip.Addr(), "exten", r.Exten, "app", r.App)
	}
}

// SIPAddr is the bound SIP host:port.
func (s *Server) SIPAddr() string { return s.sip.Addr() }

// HTTPAddr is the bound HTTP host:port.
func (s *Server) HTTPAddr() string { return s.hl.Addr().String() }

// Calls is the call model the APIs drive.
func (s *Server) Calls() call.Calls { return s.calls }

// Catalog is the recordings catalog.
func (s *Server) Catalog() *catalog.Service { return s.catalog }

// Users is the users' service (the Wazo-style users, feature codes and
// recording policy).
func (s *Server) Users() *users.Service { return s.users }

// Namer names the files of calls recorded by the users' policy, from
// call_recording's Jinja2 template.
func (s *Server) Namer() *recname.Namer { return s.namer }

// Bus is the event bus.
func (s *Server) Bus() *event.Bus { return s.bus }

// Shutdown stops taking calls, lets the calls in progress (and their
// recordings) finish and the recordings' uploads to object storage end,
// until ctx is done, then hangs up what is left and stops everything:
// SIP, calls and media, then HTTP. An upload still unfinished when ctx
// is done resumes at the node's next start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.log.Info("draining: new calls are refused", "channels", s.calls.Count())
	s.draining.Store(true)
	s.sip.StopAccepting()
	s.calls.Drain(ctx)
	if n := s.catalog.Uploading(); n > 0 {
		s.log.Info("draining: waiting for the recordings' uploads", "uploading", n)
	}
	if !s.catalog.WaitUploads(ctx) {
		s.log.Warn("draining: uploads unfinished; they resume at the next start", "uploading", s.catalog.Uploading())
	}
	return s.Close()
}

// Close stops immediately: hangs up every call, closes SIP and HTTP. It is
// idempotent (Shutdown ends with it; a deferred Close may follow).
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.draining.Store(true)
	s.sip.StopAccepting()
	s.calls.HangupAll(call.CauseNormalClearing)
	s.sip.Close()
	if s.reg != nil {
		close(s.stopPrune)
		<-s.pruned
		s.reg.Close()
	}
	if s.stopReady != nil {
		close(s.stopReady)
		<-s.readyDone
	}
	s.ari.Close()
	if s.cluster != nil {
		s.cluster.close()
	}
	s.files.close()
	s.twRelay.close()
	if s.nats != nil {
		s.nats.close()
	}
	s.closeOzeki()
	s.web.Close() // ends the live page's event streams
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	if s.stopReconcile != nil {
		s.stopReconcile()
		<-s.reconciled
	}
	s.catalog.Close() // unfinished uploads resume at the next start
	s.journal.Close() // a recording still finishing writes its line anyway
	if s.meta != nil {
		s.meta.Close()
	}
	if s.poller != nil {
		s.poller.Close()
	}
	// The recordings' last audio, and the headers their close rewrote,
	// are synced now rather than at a pass that would come after exit.
	s.calls.SyncRecordings()
	s.log.Info("tapedeck stopped")
	return nil
}

// SIPStats are the SIP endpoint's counters.
func (s *Server) SIPStats() sip.Stats { return s.sip.Stats() }

// fsyncInterval maps recording.fsync_interval_seconds (0: never) to
// call.Options.FsyncInterval (negative: never).
func fsyncInterval(sec int) time.Duration {
	if sec <= 0 {
		return -1
	}
	return time.Duration(sec) * time.Second
}
