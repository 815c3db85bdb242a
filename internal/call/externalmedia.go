package call

import (
	"fmt"
	"net"
	"strconv"

	"github.com/tapedeck/tapedeck/internal/sdp"
)

// External media (ARI POST /channels/externalMedia, Asterisk's
// chan_rtp UnicastRTP channel): a channel whose RTP peer is an address the
// application names. What the channel is sent (a bridge's mix, a
// playback) streams to that address as RTP, and the RTP that comes back
// from it is the channel's received audio: bridged with a call, the
// external program hears the call and the call hears it. The channel
// variables UNICASTRTP_LOCAL_ADDRESS and UNICASTRTP_LOCAL_PORT name
// tapedeck's end of the stream. Only the RTP encapsulation over UDP with
// connection_type client is implemented.

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
	Data           string
}

// externalFormats are the formats an external media channel can stream.
var externalFormats = map[string]sdp.Format{
	"ulaw": {PayloadType: 0, Name: "PCMU", ClockRate: 8000},
	"alaw": {PayloadType: 8, Name: "PCMA", ClockRate: 8000},
}

// ExternalMedia creates an external media channel in o.App.
func (m *Manager) ExternalMedia(o ExternalMediaOptions) (ChannelJSON, error) {
	o.Encapsulation = nonEmpty(o.Encapsulation, "rtp")
	o.Transport = nonEmpty(o.Transport, "udp")
	o.ConnectionType = nonEmpty(o.ConnectionType, "client")
	o.Direction = nonEmpty(o.Direction, "both")
	if o.App == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "app cannot be empty")
	}
	if !m.bus.Registered(o.App) {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Stasis application %s is not registered", o.App)
	}
	if o.Encapsulation != "rtp" || o.Transport != "udp" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "encapsulation %s over %s is not supported (rtp over udp is)", o.Encapsulation, o.Transport)
	}
	if o.ConnectionType != "client" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "connection_type %s is not supported with rtp", o.ConnectionType)
	}
	if o.Direction != "both" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Unsupported direction")
	}
	f, ok := externalFormats[o.Format]
	if !ok {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Unsupported format %q (ulaw, alaw)", o.Format)
	}
	if o.ExternalHost == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "external_host is required for rtp")
	}
	host, port, err := net.SplitHostPort(o.ExternalHost)
	if err != nil || host == "" || port == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "external_host %q: want host:port", o.ExternalHost)
	}
	addr, err := net.ResolveUDPAddr("udp", o.ExternalHost)
	if err != nil || addr.Port == 0 || addr.IP == nil {
		return ChannelJSON{}, errf(ErrInvalidArgument, "external_host %q is not a usable address", o.ExternalHost)
	}
	if o.ChannelID != "" {
		if _, err := m.channel(string(o.ChannelID)); err == nil {
			return ChannelJSON{}, errf(ErrConflict, "Channel with id %s already exists", o.ChannelID)
		}
	}
	cfg, err := m.opts.Ports.ListenConfig(m.opts.Poller)
	if err != nil {
		return ChannelJSON{}, errf(ErrUnavailable, "no RTP ports: %v", err)
	}
	local := map[string]string{
		"UNICASTRTP_LOCAL_ADDRESS": m.opts.Ports.IP().String(),
		"UNICASTRTP_LOCAL_PORT":    strconv.Itoa(cfg.LocalPort()),
	}
	vars := map[string]string{}
	for k, v := range o.Variables {
		vars[k] = v
	}
	for k, v := range local {
		vars[k] = v
	}
	ch, err := m.newChannel(channelSpec{
		id:           string(o.ChannelID),
		user:         "external",
		name:         fmt.Sprintf("UnicastRTP/%s-%08x", o.ExternalHost, m.seq.Load()+1),
		dialplan:     DialplanCEP{Context: "default", Exten: "s", Priority: 1},
		state:        StateUp,
		choice:       sdp.Choice{Audio: f},
		remote:       &sdp.Media{Addr: addr, Formats: []sdp.Format{f}, Direction: sdp.SendRecv, Ptime: 20},
		vars:         vars,
		app:          o.App,
		noCallRecord: true,
	}, cfg)
	if err != nil {
		return ChannelJSON{}, errf(ErrUnavailable, "media: %v", err)
	}
	ch.enterStasis(o.App, nil)
	j := ch.JSON()
	j.Channelvars = local
	return j, nil
}
