package call

import (
	"context"
	"net"
	"time"

	"github.com/tapedeck/tapedeck/internal/rtp"
)

// The seams between a channel and the packages below it: what call needs
// from a SIP dialog, from an RTP session and from time. *sip.Dialog,
// *rtp.Session and the wall clock are the production implementations;
// tests (fakes_test.go) put fakes in their place to drive the channel,
// bridge and recording state machines without sockets or waiting.

// Dialog is what a channel needs from its inbound SIP dialog (*sip.Dialog).
// Re-INVITEs and the end of the dialog come the other way, through the
// channel's sip.DialogHandler methods (Reinvite, Ended).
type Dialog interface {
	// Progress sends a provisional response (180 ringing, 183 early media
	// with an SDP answer).
	Progress(code int, reason string, sdp []byte) error
	// Answer sends 200 OK with the SDP (an answer, or an offer for a late
	// offer call).
	Answer(sdp []byte) error
	// Reject sends a final failure response.
	Reject(code int, reason string) error
	// Hangup ends the dialog: BYE once answered, else a final response.
	Hangup(ctx context.Context, code int, reason string) error
	// Acked is closed when the ACK of the 200 arrives; AckBody is its SDP
	// (the answer of a late offer call).
	Acked() <-chan struct{}
	AckBody() []byte
	// TargetURI is the SIP URI of a transfer target: a URI as it is, an
	// extension at this node.
	TargetURI(target string) (string, error)
	// Redirect answers the unanswered INVITE 302 with a Contact of uri.
	Redirect(uri string) error
	// Refer asks the peer of the answered dialog to call uri (REFER); the
	// statuses of that call arrive on the channel, closed at the end.
	Refer(ctx context.Context, uri string) (<-chan int, error)
}

// Media is what a channel needs from its RTP session (*rtp.Session).
type Media interface {
	// Update points the session at a new remote address (nil: send
	// nothing) and payload types.
	Update(remote *net.UDPAddr, pt, dtmfPT uint8)
	WriteAudio(payload []byte, samples uint32) error
	// SendDigit sends one RFC 4733 event, paced; it blocks for its length.
	SendDigit(digit rune, duration time.Duration) error
	// Arrival is the receive time of the packet being handled (during
	// OnAudio or OnDTMF).
	Arrival() time.Time
	// Flush hands the handler what has arrived and is still queued.
	Flush()
	// SetOwned makes reads happen only on Flush (a bridge's clock).
	SetOwned(on bool)
	Stats() rtp.Stats
	LocalAddr() *net.UDPAddr
	Remote() *net.UDPAddr
	Close() error
}

// newRTPSession is the default Options.NewMedia: an rtp.Session on cfg's
// sockets, started.
func newRTPSession(cfg rtp.Config) (Media, error) {
	s := rtp.NewSession(cfg)
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Clock is the time a Manager's channels wait on: the wall clock, or a
// fake in tests.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a Clock's timer (as time.Timer).
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// wallClock is the real Clock; now is Options.Now.
type wallClock struct{ now func() time.Time }

func (c wallClock) Now() time.Time { return c.now() }

func (wallClock) NewTimer(d time.Duration) Timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ t *time.Timer }

func (t wallTimer) C() <-chan time.Time { return t.t.C }
func (t wallTimer) Stop() bool          { return t.t.Stop() }
