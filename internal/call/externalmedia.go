package call

import (
	"fmt"
	"net"
	"strconv"

	"github.com/google/uuid"

	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
)

// External media (ARI POST /channels/externalMedia): a channel whose
// audio goes to a program the application names and whose received audio
// is what that program sends back. Bridged with a call, the program hears
// the call and the call hears it. Three transports, as in Asterisk:
//   - rtp over udp (chan_rtp's UnicastRTP): RTP to external_host in ulaw,
//     alaw or slin* (L16, rtpslin.go); the channel variables
//     UNICASTRTP_LOCAL_ADDRESS/PORT name tapedeck's end;
//   - audiosocket over tcp (chan_audiosocket): a TCP connection to
//     external_host, the UUID in data (audiosocket.go);
//   - none over websocket (chan_websocket): a configured websocket client
//     connection, or with connection_type server the application connects
//     to /media/{MEDIA_WEBSOCKET_CONNECTION_ID} (extwebsocket.go).
// The stream transports carry slin at 8 … 192 kHz (resampled from and to
// the core's 8 kHz), ulaw or alaw (extstream.go).

// ExternalMediaOptions are the parameters of externalMedia.
type ExternalMediaOptions struct {
	ChannelID      ChannelID
	App            string
	Variables      map[string]string
	ExternalHost   string // host:port of the RTP receiver
	Encapsulation  string // rtp (default), audiosocket, none
	Transport      string // udp (default), tcp, websocket
	ConnectionType string // client (default), server
	Format         string // ulaw, alaw
	Direction      string // both (default)
	Data           string // the AudioSocket UUID
	TransportData  string
}

// externalFormats are the formats an external media channel can stream.
var externalFormats = map[string]sdp.Format{
	"ulaw": {PayloadType: 0, Name: "PCMU", ClockRate: 8000},
	"alaw": {PayloadType: 8, Name: "PCMA", ClockRate: 8000},
}

// ExternalMedia creates an external media channel in o.App. The checks
// and their wording follow Asterisk's ast_ari_channels_external_media.
func (m *Manager) ExternalMedia(o ExternalMediaOptions) (ChannelJSON, error) {
	o.Encapsulation = nonEmpty(o.Encapsulation, "rtp")
	o.Transport = nonEmpty(o.Transport, "udp")
	o.ConnectionType = nonEmpty(o.ConnectionType, "client")
	if o.App == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "app cannot be empty")
	}
	if o.Transport == "websocket" && o.Encapsulation != "none" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "encapsulation must be 'none' for websocket transport")
	}
	if o.Encapsulation == "rtp" && o.Transport != "udp" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "transport must be 'udp' for rtp encapsulation")
	}
	if o.Encapsulation == "audiosocket" && o.Transport != "tcp" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "transport must be 'tcp' for audiosocket encapsulation")
	}
	if o.ConnectionType != "client" && o.ConnectionType != "server" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Invalid connection_type %q (client, server)", o.ConnectionType)
	}
	if o.Transport != "websocket" && o.ConnectionType == "server" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "'server' connection_type can only be used with the websocket transport")
	}
	if o.ExternalHost == "" {
		if o.ConnectionType == "client" {
			return ChannelJSON{}, errf(ErrInvalidArgument, "external_host is required for all but websocket server connections")
		}
		o.ExternalHost = "INCOMING"
	}
	if o.Transport == "websocket" {
		if o.ConnectionType == "client" {
			if _, ok := m.opts.MediaWebSocketClients[o.ExternalHost]; !ok {
				return ChannelJSON{}, errf(ErrInvalidArgument, "external_host must be a valid websocket_client connection id.")
			}
		}
	} else if host, port, err := net.SplitHostPort(o.ExternalHost); err != nil || host == "" || port == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "external_host must be <host>:<port> for all transports other than websocket")
	}
	if o.Format == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "format cannot be empty")
	}
	if _, ok := wsDirNames[o.Direction]; !ok && o.Direction != "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Invalid direction specified")
	}
	if !m.bus.Registered(o.App) {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Stasis application %s is not registered", o.App)
	}
	if o.ChannelID != "" {
		if _, err := m.channel(string(o.ChannelID)); err == nil {
			return ChannelJSON{}, errf(ErrConflict, "Channel with id %s already exists", o.ChannelID)
		}
	}
	switch {
	case o.Encapsulation == "rtp" && o.Transport == "udp":
		return m.externalRTP(o)
	case o.Encapsulation == "audiosocket" && o.Transport == "tcp":
		return m.externalAudioSocket(o)
	case o.Encapsulation == "none" && o.Transport == "websocket":
		return m.externalWebSocket(o)
	}
	return ChannelJSON{}, errf(ErrNotImplemented, "The encapsulation and/or transport is not supported")
}

// externalRTP is the rtp/udp external media channel (UnicastRTP).
func (m *Manager) externalRTP(o ExternalMediaOptions) (ChannelJSON, error) {
	f, ok := externalFormats[o.Format]
	var wrap func(Media) Media
	var l16 *l16In
	if sl, isSlin := rtpSlinFormats[o.Format]; isSlin {
		f, ok = sdp.Format{PayloadType: sl.pt, Name: "L16", ClockRate: uint32(sl.rate)}, true
		wrap = func(m Media) Media { return newL16Out(m, sl.rate) }
		l16 = newL16In(sl.pt, sl.rate)
	}
	if !ok {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Unsupported format %q for rtp (ulaw, alaw, slin, slin12 … slin192)", o.Format)
	}
	addr, err := net.ResolveUDPAddr("udp", o.ExternalHost)
	if err != nil || addr.Port == 0 || addr.IP == nil {
		return ChannelJSON{}, errf(ErrInvalidArgument, "external_host %q is not a usable address", o.ExternalHost)
	}
	cfg, err := m.opts.Ports.ListenConfig(m.opts.Poller)
	if err != nil {
		return ChannelJSON{}, errf(ErrUnavailable, "no RTP ports: %v", err)
	}
	local := map[string]string{
		"UNICASTRTP_LOCAL_ADDRESS": m.opts.Ports.IP().String(),
		"UNICASTRTP_LOCAL_PORT":    strconv.Itoa(cfg.LocalPort()),
	}
	ch, err := m.newChannel(channelSpec{
		id:           string(o.ChannelID),
		user:         "external",
		external:     true,
		name:         fmt.Sprintf("UnicastRTP/%s-%08x", o.ExternalHost, m.seq.Load()+1),
		dialplan:     DialplanCEP{Context: "default", Exten: "s", Priority: 1},
		state:        StateUp,
		choice:       sdp.Choice{Audio: f},
		remote:       &sdp.Media{Addr: addr, Formats: []sdp.Format{f}, Direction: sdp.SendRecv, Ptime: 20},
		vars:         withVars(o.Variables, local),
		app:          o.App,
		dialed:       true,
		noCallRecord: true,
		wrapMedia:    wrap,
		l16:          l16,
	}, cfg)
	if err != nil {
		return ChannelJSON{}, errf(ErrUnavailable, "media: %v", err)
	}
	ch.execStasis(o.App, o.Data)
	j := ch.JSON()
	j.Channelvars = local
	return j, nil
}

// withVars is the request's variables with the driver's set over them.
func withVars(req, driver map[string]string) map[string]string {
	vars := map[string]string{}
	for k, v := range req {
		vars[k] = v
	}
	for k, v := range driver {
		vars[k] = v
	}
	return vars
}

// streamFormatOf checks a stream transport's format.
func streamFormatOf(name string) (streamFormat, error) {
	f, ok := streamFormats[name]
	if !ok {
		return f, errf(ErrInvalidArgument, "Unsupported format %q (slin, slin12, slin16, slin24, slin32, slin44, slin48, slin96, slin192, ulaw, alaw)", name)
	}
	return f, nil
}

// newStreamChannel makes the channel of a stream transport.
func (m *Manager) newStreamChannel(o ExternalMediaOptions, name string, state State, f streamFormat, driver map[string]string) (*Channel, *streamMedia, error) {
	sm := newStreamMedia(m, f, uint32(m.seq.Load())|0xe0000000)
	audio := externalFormats["ulaw"]
	if f.enc == "alaw" {
		audio = externalFormats["alaw"]
	}
	ch, err := m.newChannel(channelSpec{
		id:           string(o.ChannelID),
		user:         "external",
		external:     true,
		name:         name,
		dialplan:     DialplanCEP{Context: "default", Exten: "s", Priority: 1},
		state:        state,
		choice:       sdp.Choice{Audio: audio},
		vars:         withVars(o.Variables, driver),
		app:          o.App,
		dialed:       true,
		media:        sm,
		noCallRecord: true,
	}, rtp.Config{})
	if err != nil {
		return nil, nil, err
	}
	sm.start(ch)
	return ch, sm, nil
}

// externalAudioSocket is the audiosocket/tcp external media channel.
func (m *Manager) externalAudioSocket(o ExternalMediaOptions) (ChannelJSON, error) {
	if o.Data == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "data can not be empty")
	}
	id, err := uuid.Parse(o.Data)
	if err != nil {
		return ChannelJSON{}, errf(ErrInvalidArgument, "data must be the stream's UUID: %v", err)
	}
	f, err := streamFormatOf(o.Format)
	if err != nil {
		return ChannelJSON{}, err
	}
	conn, err := dialAudioSocket(o.ExternalHost, id, f.kind, m.opts.AudioSocketBatch, f.frameBytes())
	if err != nil {
		return ChannelJSON{}, errf(ErrUnavailable, "AudioSocket connection to %s failed: %v", o.ExternalHost, err)
	}
	driver := map[string]string{"AUDIOSOCKET_UUID": o.Data, "AUDIOSOCKET_SERVICE": o.ExternalHost}
	ch, sm, err := m.newStreamChannel(o, fmt.Sprintf("AudioSocket/%s-%s", o.ExternalHost, o.Data), StateUp, f, driver)
	if err != nil {
		conn.close()
		return ChannelJSON{}, err
	}
	sm.connect(conn)
	go conn.run(sm)
	ch.execStasis(o.App, o.Data)
	j := ch.JSON()
	j.Channelvars = driver
	return j, nil
}

// externalWebSocket is the none/websocket external media channel.
func (m *Manager) externalWebSocket(o ExternalMediaOptions) (ChannelJSON, error) {
	f, err := streamFormatOf(o.Format)
	if err != nil {
		return ChannelJSON{}, err
	}
	wo, err := parseWSOptions(o.TransportData)
	if err != nil {
		return ChannelJSON{}, errf(ErrInvalidArgument, "transport_data %q: %v", o.TransportData, err)
	}
	if o.Direction != "" {
		wo.dir = wsDirNames[o.Direction] // Asterisk appends d(direction) after transport_data
	}
	connID := uuid.NewString()
	driver := map[string]string{
		"MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": strconv.Itoa(f.frameBytes()),
		"MEDIA_WEBSOCKET_CONNECTION_ID":      connID,
	}
	name := fmt.Sprintf("WebSocket/%s/%08x", o.ExternalHost, m.seq.Load()+1)
	if o.ConnectionType == "server" {
		ch, sm, err := m.newStreamChannel(o, name, StateDown, f, driver)
		if err != nil {
			return ChannelJSON{}, err
		}
		m.mu.Lock()
		m.wsPending[connID] = wsPending{sm, wo}
		m.mu.Unlock()
		go func() {
			<-ch.done
			m.mu.Lock()
			delete(m.wsPending, connID)
			m.mu.Unlock()
		}()
		ch.execStasis(o.App, o.Data)
		j := ch.JSON()
		j.Channelvars = driver
		return j, nil
	}
	conn, nb, err := dialMediaWebSocket(m.opts.MediaWebSocketClients[o.ExternalHost], wo.uriParams)
	if err != nil {
		return ChannelJSON{}, errf(ErrUnavailable, "WebSocket connection %s failed: %v", o.ExternalHost, err)
	}
	ch, sm, err := m.newStreamChannel(o, name, StateDown, f, driver)
	if err != nil {
		conn.CloseNow()
		return ChannelJSON{}, err
	}
	w := newMediaWebSocket(conn, nb, sm, connID, wo)
	ch.execStasis(o.App, o.Data)
	go w.run()
	j := ch.JSON()
	j.Channelvars = driver
	return j, nil
}
