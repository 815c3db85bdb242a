// Package sdp does SDP offer/answer for audio calls (RFC 3264) on top of
// pion/sdp: it reads a remote offer or answer, picks a common G.711 codec
// and telephone-event, and writes tapedeck's own offers and answers.
package sdp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	psdp "github.com/pion/sdp/v3"
)

// Sentinel errors. ErrMalformed maps to SIP 400, ErrNoCommonCodec to 488.
var (
	ErrMalformed     = errors.New("sdp: malformed")
	ErrNoAudio       = errors.New("sdp: no audio stream")
	ErrNoCommonCodec = errors.New("sdp: no common codec")
)

// Direction is an SDP media direction attribute.
type Direction string

// Media directions.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Reverse gives the direction an answerer uses for an offered direction.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Format is one payload format of the audio stream.
type Format struct {
	PayloadType uint8
	Name        string // upper case encoding name: PCMU, PCMA, TELEPHONE-EVENT
	ClockRate   uint32
	Fmtp        string
}

// Media is what tapedeck needs from a session description.
type Media struct {
	// Addr is the remote RTP address (connection address + media port).
	// Port 0 means the stream is disabled.
	Addr      *net.UDPAddr
	Formats   []Format // in the order of the m= line
	Direction Direction
	Ptime     int
	// Hold is set for a direction of sendonly/inactive or a 0.0.0.0 address.
	Hold      bool
	SessionID uint64
	Version   uint64
}

// static payload types from RFC 3551 that tapedeck cares about.
var static = map[uint8]Format{
	0: {PayloadType: 0, Name: "PCMU", ClockRate: 8000},
	8: {PayloadType: 8, Name: "PCMA", ClockRate: 8000},
}

// Parse reads a session description and its first audio stream.
func Parse(body []byte) (*Media, error) {
	var sd psdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// The first audio stream that is not disabled (port 0), else the first.
	var md *psdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" && (md == nil || md.MediaName.Port.Value == 0) {
			md = m
		}
	}
	if md == nil {
		return nil, ErrNoAudio
	}
	proto := strings.Join(md.MediaName.Protos, "/")
	if proto != "RTP/AVP" && proto != "RTP/AVPF" {
		return nil, fmt.Errorf("%w: unsupported transport %q", ErrNoCommonCodec, proto)
	}
	conn := md.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return nil, fmt.Errorf("%w: no connection address", ErrMalformed)
	}
	ip := net.ParseIP(conn.Address.Address)
	if ip == nil {
		// Resolving names would block the signalling path; tapedeck takes IPs.
		return nil, fmt.Errorf("%w: connection address %q is not an IP address", ErrMalformed, conn.Address.Address)
	}
	m := &Media{
		Addr:      &net.UDPAddr{IP: ip, Port: md.MediaName.Port.Value},
		Direction: SendRecv,
		SessionID: sd.Origin.SessionID,
		Version:   sd.Origin.SessionVersion,
	}
	if m.Addr.Port < 0 || m.Addr.Port > 65535 {
		return nil, fmt.Errorf("%w: bad port %d", ErrMalformed, m.Addr.Port)
	}
	for _, attrs := range [][]psdp.Attribute{sd.Attributes, md.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				m.Direction = Direction(a.Key)
			case "ptime":
				if n, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && n > 0 && n <= 200 {
					m.Ptime = n
				}
			}
		}
	}
	rtpmaps := map[uint8]Format{}
	fmtps := map[uint8]string{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			f, err := parseRtpmap(a.Value)
			if err != nil {
				return nil, err
			}
			rtpmaps[f.PayloadType] = f
		case "fmtp":
			pt, rest, ok := strings.Cut(a.Value, " ")
			if n, err := strconv.Atoi(pt); ok && err == nil && n >= 0 && n < 128 {
				fmtps[uint8(n)] = strings.TrimSpace(rest)
			}
		}
	}
	for _, fs := range md.MediaName.Formats {
		n, err := strconv.Atoi(fs)
		if err != nil || n < 0 || n > 127 {
			return nil, fmt.Errorf("%w: bad payload type %q", ErrMalformed, fs)
		}
		pt := uint8(n)
		f, ok := rtpmaps[pt]
		if !ok {
			f, ok = static[pt]
		}
		if !ok {
			f = Format{PayloadType: pt, Name: "PT" + fs}
		}
		f.Fmtp = fmtps[pt]
		m.Formats = append(m.Formats, f)
	}
	m.Hold = m.Direction == SendOnly || m.Direction == Inactive || ip.IsUnspecified()
	return m, nil
}

func parseRtpmap(v string) (Format, error) {
	pt, rest, ok := strings.Cut(v, " ")
	n, err := strconv.Atoi(pt)
	if !ok || err != nil || n < 0 || n > 127 {
		return Format{}, fmt.Errorf("%w: bad rtpmap %q", ErrMalformed, v)
	}
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) < 2 {
		return Format{}, fmt.Errorf("%w: bad rtpmap %q", ErrMalformed, v)
	}
	rate, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || rate == 0 {
		return Format{}, fmt.Errorf("%w: bad rtpmap clock rate %q", ErrMalformed, v)
	}
	return Format{PayloadType: uint8(n), Name: strings.ToUpper(parts[0]), ClockRate: uint32(rate)}, nil
}

// Choice is the result of negotiation.
type Choice struct {
	Audio Format
	// DTMF is the telephone-event format; PayloadType 0 with empty Name when
	// the peer did not offer it.
	DTMF    Format
	HasDTMF bool
}

// Negotiate picks the first codec of the remote's list that tapedeck supports
// (the offerer's preference, as Asterisk does by default) and
// telephone-event/8000 if offered. supported lists codec names.
// A disabled stream (port 0) has nothing to negotiate: RFC 3264 5.1, 488.
func Negotiate(remote *Media, supported []string) (Choice, error) {
	var c Choice
	if remote.Addr != nil && remote.Addr.Port == 0 {
		return c, fmt.Errorf("%w: the audio stream is disabled (port 0)", ErrNoCommonCodec)
	}
	found := false
	for _, f := range remote.Formats {
		if f.ClockRate != 8000 {
			continue
		}
		if !found {
			for _, s := range supported {
				if strings.EqualFold(s, f.Name) {
					c.Audio, found = f, true
					break
				}
			}
		}
		if f.Name == "TELEPHONE-EVENT" && !c.HasDTMF {
			c.DTMF, c.HasDTMF = f, true
		}
	}
	if !found {
		names := make([]string, 0, len(remote.Formats))
		for _, f := range remote.Formats {
			names = append(names, f.Name)
		}
		return c, fmt.Errorf("%w: offered %s, supported %s", ErrNoCommonCodec, strings.Join(names, ","), strings.Join(supported, ","))
	}
	return c, nil
}

var sessionCounter atomic.Uint64

// NewSessionID returns an NTP-like session id for o= lines.
func NewSessionID() uint64 {
	return uint64(time.Now().Unix())<<16 + sessionCounter.Add(1)
}

// Local describes tapedeck's side of a media stream.
type Local struct {
	IP        net.IP
	Port      int
	SessionID uint64
	Version   uint64
	Direction Direction
	Ptime     int
}

// Answer writes an answer with exactly the chosen codec (and DTMF).
func Answer(l Local, c Choice) ([]byte, error) {
	formats := []Format{c.Audio}
	if c.HasDTMF {
		formats = append(formats, c.DTMF)
	}
	return build(l, formats)
}

// Offer writes an offer with the given codecs (PCMU, PCMA) and
// telephone-event at dtmfPT (0 to leave it out).
func Offer(l Local, codecs []string, dtmfPT uint8) ([]byte, error) {
	var formats []Format
	for _, name := range codecs {
		for _, f := range static {
			if strings.EqualFold(f.Name, name) {
				formats = append(formats, f)
			}
		}
	}
	if len(formats) == 0 {
		return nil, ErrNoCommonCodec
	}
	if dtmfPT != 0 {
		formats = append(formats, Format{PayloadType: dtmfPT, Name: "TELEPHONE-EVENT", ClockRate: 8000, Fmtp: "0-16"})
	}
	return build(l, formats)
}

func build(l Local, formats []Format) ([]byte, error) {
	addrType := "IP4"
	if l.IP.To4() == nil {
		addrType = "IP6"
	}
	ip := l.IP.String()
	if l.Direction == "" {
		l.Direction = SendRecv
	}
	if l.Ptime == 0 {
		l.Ptime = 20
	}
	md := &psdp.MediaDescription{
		MediaName: psdp.MediaName{
			Media:  "audio",
			Port:   psdp.RangedPort{Value: l.Port},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, f := range formats {
		pt := strconv.Itoa(int(f.PayloadType))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		name := f.Name
		if name == "TELEPHONE-EVENT" {
			name = "telephone-event"
		}
		md.Attributes = append(md.Attributes, psdp.NewAttribute("rtpmap", fmt.Sprintf("%s %s/%d", pt, name, f.ClockRate)))
		if f.Name == "TELEPHONE-EVENT" {
			fmtp := f.Fmtp
			if fmtp == "" {
				fmtp = "0-16"
			}
			md.Attributes = append(md.Attributes, psdp.NewAttribute("fmtp", pt+" "+fmtp))
		}
	}
	md.Attributes = append(md.Attributes,
		psdp.NewAttribute("ptime", strconv.Itoa(l.Ptime)),
		psdp.NewAttribute("maxptime", "150"),
		psdp.NewPropertyAttribute(string(l.Direction)),
	)
	sd := &psdp.SessionDescription{
		Origin: psdp.Origin{
			Username:       "tapedeck",
			SessionID:      l.SessionID,
			SessionVersion: l.Version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: ip,
		},
		SessionName: "tapedeck",
		ConnectionInformation: &psdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &psdp.Address{Address: ip},
		},
		TimeDescriptions:  []psdp.TimeDescription{{Timing: psdp.Timing{}}},
		MediaDescriptions: []*psdp.MediaDescription{md},
	}
	return sd.Marshal()
}
