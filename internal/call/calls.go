package call

import (
	"context"
	"io"
	"time"

	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Typed ids: what the APIs name things by. Nothing outside this package
// holds a *Channel, *Bridge, *Playback or *LiveRecording; it passes these
// ids to Calls and gets JSON-able snapshots back.
type (
	// ChannelID is a channel's unique id: [node_id-]epoch.serial, as
	// Asterisk's [system_name-]epoch.serial, or the client's own.
	ChannelID string
	// BridgeID is a bridge's id: [node_id-]uuid, or the client's own.
	BridgeID string
	// PlaybackID is a playback's id (a uuid or the client's own).
	PlaybackID string
	// RecordingName names a live or stored recording (relative to the
	// recordings root, '/' making subdirectories, no extension).
	RecordingName string
)

// DTMFOptions are the parameters of sending DTMF to a channel, in
// milliseconds.
type DTMFOptions struct {
	Digits                           string
	Before, Between, Duration, After int
}

// Calls is the call model as every API sees it: ARI, the Restcomm API and
// whatever comes next (a command API, a web page, routing to another
// node). *Manager is the local implementation. Errors are this package's
// kinds (errors.go).
type Calls interface {
	// Channels.
	Channels() []ChannelJSON
	// AppendCallSummaries appends a summary of every channel, oldest
	// first, to dst: a list of calls without Channels' copies.
	AppendCallSummaries(dst []CallSummary) []CallSummary
	Channel(id ChannelID) (ChannelJSON, error)
	Count() int
	Originate(o OriginateOptions) (ChannelJSON, error)
	CreateChannel(o OriginateOptions) (ChannelJSON, error)
	Dial(id ChannelID, caller ChannelID, timeout time.Duration) error
	Hangup(id ChannelID, cause Cause) error
	Answer(id ChannelID) error
	Ring(id ChannelID, on bool) error
	Progress(id ChannelID) error
	SendDTMF(id ChannelID, o DTMFOptions) error
	Mute(id ChannelID, direction string, on bool) error
	Hold(id ChannelID, on bool) error
	Silence(id ChannelID, on bool) error
	Var(id ChannelID, name string) (string, error)
	SetVar(id ChannelID, name, value string, unset bool) error
	// ReportVar makes a variable part of the channel's events from now on
	// (channelvars; setChannelVar's report_events).
	ReportVar(id ChannelID, name string) error
	RTPStats(id ChannelID) (rtpsess.Stats, error)
	Play(id ChannelID, o PlayOptions) (PlaybackJSON, error)
	Record(id ChannelID, o RecordOptions) (LiveRecordingJSON, error)
	Snoop(id ChannelID, o SnoopOptions) (ChannelJSON, error)
	ExternalMedia(o ExternalMediaOptions) (ChannelJSON, error)
	Move(id ChannelID, app, appArgs string) error
	Continue(id ChannelID, o ContinueOptions) error
	Redirect(id ChannelID, endpoint string) error
	StartMOH(id ChannelID, class string) error
	StopMOH(id ChannelID) error

	// Bridges.
	Bridges() []BridgeJSON
	Bridge(id BridgeID) (BridgeJSON, error)
	CreateBridge(id BridgeID, typ, name string) (BridgeJSON, error)
	DestroyBridge(id BridgeID) error
	AddToBridge(id BridgeID, ch ChannelID, o JoinOptions) error
	RemoveFromBridge(id BridgeID, ch ChannelID) error
	PlayOnBridge(id BridgeID, o PlayOptions) (PlaybackJSON, error)
	RecordBridge(id BridgeID, o RecordOptions, stereo bool) (LiveRecordingJSON, error)
	StartBridgeMOH(id BridgeID, class string) error
	BridgeVar(id BridgeID, name string) (string, error)
	SetBridgeVar(id BridgeID, name, value string, unset, report bool) error
	StopBridgeMOH(id BridgeID) error

	// Playbacks.
	Playback(id PlaybackID) (PlaybackJSON, error)
	StopPlayback(id PlaybackID) error
	ControlPlayback(id PlaybackID, op PlaybackOp) error

	// Live recordings.
	LiveRecording(name RecordingName) (LiveRecordingJSON, error)
	StopRecording(name RecordingName) error
	CancelRecording(name RecordingName) error
	PauseRecording(name RecordingName, on bool) error
	// PauseRecordingAs pauses (skip or silence) or resumes a live
	// recording on behalf of by, noting the paused interval.
	PauseRecordingAs(name RecordingName, on bool, behavior, by string) error
	MuteRecording(name RecordingName, on bool) error

	// Third-party control (command API, scripts): any call, in an
	// application or not (command.go).
	RecordCall(id ChannelID, o CallRecordOptions) (LiveRecordingJSON, error)
	PlayCall(id ChannelID, o PlayOptions) (PlaybackJSON, error)
	PlayDone(id PlaybackID) <-chan struct{}
	SendDTMFCall(id ChannelID, o DTMFOptions) error
	AnswerCall(id ChannelID) error
	CallDone(id ChannelID) <-chan struct{}
	// CallSid is the catalog's id of the channel's call (Twilio's and
	// Restcomm's CallSid), for any channel: ARI's CALLSID variable reads
	// only channels in an application.
	CallSid(id ChannelID) (string, error)
	CollectDigits(ctx context.Context, id ChannelID, max int, finish string, timeout time.Duration) (string, error)
	ConnectCalls(a, b ChannelID) (BridgeID, error)

	// Stored recordings.
	ListStored() ([]StoredRecordingJSON, error)
	GetStored(name string) (*StoredRecording, error)
	OpenStored(ctx context.Context, rec *StoredRecording) (io.ReadSeekCloser, time.Time, error)
	DeleteStored(name string, by meta.Audit) error
	CopyStored(src, dst string) (*StoredRecording, error)
}

var _ Calls = (*Manager)(nil)

// withChannel runs f on a live channel.
func (m *Manager) withChannel(id ChannelID, f func(*Channel) error) error {
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	return f(ch)
}

// CallSid is the catalog's id of the channel's call, in an application or
// not (set at the channel's creation).
func (m *Manager) CallSid(id ChannelID) (string, error) {
	ch, err := m.channel(string(id))
	if err != nil {
		return "", err
	}
	return ch.callSid, nil
}

// Channel snapshots a channel.
func (m *Manager) Channel(id ChannelID) (ChannelJSON, error) {
	ch, err := m.channel(string(id))
	if err != nil {
		return ChannelJSON{}, err
	}
	return ch.JSON(), nil
}

// Originate creates an outgoing channel and dials it at once (see
// originate).
func (m *Manager) Originate(o OriginateOptions) (ChannelJSON, error) {
	_, js, err := m.originate(o)
	return js, err
}

// CreateChannel makes an outgoing channel in an application without
// dialing it (ARI's channels/create; Dial dials it).
func (m *Manager) CreateChannel(o OriginateOptions) (ChannelJSON, error) {
	ch, err := m.create(o)
	if err != nil {
		return ChannelJSON{}, err
	}
	return ch.JSON(), nil
}

// Dial dials a created channel; caller, if set, is the calling channel.
func (m *Manager) Dial(id, caller ChannelID, timeout time.Duration) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.Dial(string(caller), timeout) })
}

// Hangup hangs a channel up with a cause.
func (m *Manager) Hangup(id ChannelID, cause Cause) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.Hangup(cause) })
}

// Answer answers a channel.
func (m *Manager) Answer(id ChannelID) error {
	return m.withChannel(id, (*Channel).Answer)
}

// Ring starts (180 Ringing) or stops ringing indication.
func (m *Manager) Ring(id ChannelID, on bool) error {
	return m.withChannel(id, func(ch *Channel) error {
		if on {
			return ch.Ring()
		}
		return ch.RingStop()
	})
}

// Progress sends 183 Session Progress.
func (m *Manager) Progress(id ChannelID) error {
	return m.withChannel(id, (*Channel).Progress)
}

// SendDTMF sends digits to a channel.
func (m *Manager) SendDTMF(id ChannelID, o DTMFOptions) error {
	return m.withChannel(id, func(ch *Channel) error {
		return ch.SendDTMF(o.Digits, o.Before, o.Between, o.Duration, o.After)
	})
}

// Mute mutes or unmutes a channel's audio (direction in, out or both).
func (m *Manager) Mute(id ChannelID, direction string, on bool) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.Mute(direction, on) })
}

// Hold puts a channel on hold or takes it off.
func (m *Manager) Hold(id ChannelID, on bool) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.Hold(on) })
}

// Silence starts or stops playing silence to a channel.
func (m *Manager) Silence(id ChannelID, on bool) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.Silence(on) })
}

// Var reads a channel variable or dialplan function.
func (m *Manager) Var(id ChannelID, name string) (v string, err error) {
	err = m.withChannel(id, func(ch *Channel) error {
		v, err = ch.GetVar(name)
		return err
	})
	return v, err
}

// SetVar sets (or with unset, removes) a channel variable.
func (m *Manager) SetVar(id ChannelID, name, value string, unset bool) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.SetVar(name, value, unset) })
}

// ReportVar adds a variable to the channelvars of the channel's events.
func (m *Manager) ReportVar(id ChannelID, name string) error {
	return m.withChannel(id, func(ch *Channel) error { return ch.ReportVar(name) })
}

// RTPStats is a channel's RTP statistics.
func (m *Manager) RTPStats(id ChannelID) (st rtpsess.Stats, err error) {
	err = m.withChannel(id, func(ch *Channel) error {
		st = ch.RTPStats()
		return nil
	})
	return st, err
}

// Play starts a playback on a channel.
func (m *Manager) Play(id ChannelID, o PlayOptions) (j PlaybackJSON, err error) {
	err = m.withChannel(id, func(ch *Channel) error {
		p, err := ch.Play(o)
		if err == nil {
			j = p.JSON()
		}
		return err
	})
	return j, err
}

// Record starts recording a channel.
func (m *Manager) Record(id ChannelID, o RecordOptions) (j LiveRecordingJSON, err error) {
	err = m.withChannel(id, func(ch *Channel) error {
		r, err := ch.Record(o)
		if err == nil {
			j = r.JSON()
		}
		return err
	})
	return j, err
}

// withBridge runs f on a live bridge.
func (m *Manager) withBridge(id BridgeID, f func(*Bridge) error) error {
	b, err := m.bridge(string(id))
	if err != nil {
		return err
	}
	return f(b)
}

// BridgeVar reads a bridge variable.
func (m *Manager) BridgeVar(id BridgeID, name string) (v string, err error) {
	err = m.withBridge(id, func(b *Bridge) error {
		v, err = b.Var(name)
		return err
	})
	return v, err
}

// SetBridgeVar sets a bridge variable (report: shown in bridgevars).
func (m *Manager) SetBridgeVar(id BridgeID, name, value string, unset, report bool) error {
	return m.withBridge(id, func(b *Bridge) error { return b.SetVar(name, value, unset, report) })
}

// Bridge snapshots a bridge.
func (m *Manager) Bridge(id BridgeID) (BridgeJSON, error) {
	b, err := m.bridge(string(id))
	if err != nil {
		return BridgeJSON{}, err
	}
	return b.JSON(), nil
}

// CreateBridge creates a bridge (type mixing, the default, or holding);
// an empty id gets [node_id-]uuid.
func (m *Manager) CreateBridge(id BridgeID, typ, name string) (BridgeJSON, error) {
	b, err := m.createBridge(string(id), typ, name)
	if err != nil {
		return BridgeJSON{}, err
	}
	return b.JSON(), nil
}

// DestroyBridge shuts a bridge down.
func (m *Manager) DestroyBridge(id BridgeID) error {
	return m.withBridge(id, func(b *Bridge) error { b.Destroy(); return nil })
}

// AddToBridge puts a channel into a bridge (moving it from another one).
// A missing channel is ErrChannelNotFound, a missing bridge
// ErrBridgeNotFound.
func (m *Manager) AddToBridge(id BridgeID, chID ChannelID, o JoinOptions) error {
	return m.withBridge(id, func(b *Bridge) error {
		ch, err := m.channel(string(chID))
		if err != nil {
			return err
		}
		return b.addChannelWith(ch, o, true)
	})
}

// RemoveFromBridge takes a channel out of a bridge (ErrInvalidState when
// it is not in it).
func (m *Manager) RemoveFromBridge(id BridgeID, chID ChannelID) error {
	return m.withBridge(id, func(b *Bridge) error {
		ch, err := m.channel(string(chID))
		if err != nil {
			return err
		}
		return b.RemoveChannel(ch)
	})
}

// PlayOnBridge starts a playback on a bridge.
func (m *Manager) PlayOnBridge(id BridgeID, o PlayOptions) (j PlaybackJSON, err error) {
	err = m.withBridge(id, func(b *Bridge) error {
		p, err := b.Play(o)
		if err == nil {
			j = p.JSON()
		}
		return err
	})
	return j, err
}

// RecordBridge records a bridge's mix (stereo: one party per channel).
func (m *Manager) RecordBridge(id BridgeID, o RecordOptions, stereo bool) (j LiveRecordingJSON, err error) {
	err = m.withBridge(id, func(b *Bridge) error {
		r, err := b.Record(o, stereo)
		if err == nil {
			j = r.JSON()
		}
		return err
	})
	return j, err
}

// Playback snapshots a playback.
func (m *Manager) Playback(id PlaybackID) (PlaybackJSON, error) {
	p, err := m.playback(string(id))
	if err != nil {
		return PlaybackJSON{}, err
	}
	return p.JSON(), nil
}

// StopPlayback stops a playback.
func (m *Manager) StopPlayback(id PlaybackID) error {
	p, err := m.playback(string(id))
	if err != nil {
		return err
	}
	p.Stop()
	return nil
}

// ControlPlayback restarts, pauses, unpauses, rewinds or fast-forwards a
// playback.
func (m *Manager) ControlPlayback(id PlaybackID, op PlaybackOp) error {
	p, err := m.playback(string(id))
	if err != nil {
		return err
	}
	return p.Control(op)
}

// withRecording runs f on a live recording.
func (m *Manager) withRecording(name RecordingName, f func(*LiveRecording) error) error {
	r, err := m.liveRecording(string(name))
	if err != nil {
		return err
	}
	return f(r)
}

// LiveRecording snapshots a live recording.
func (m *Manager) LiveRecording(name RecordingName) (LiveRecordingJSON, error) {
	r, err := m.liveRecording(string(name))
	if err != nil {
		return LiveRecordingJSON{}, err
	}
	return r.JSON(), nil
}

// StopRecording stops a live recording and stores it.
func (m *Manager) StopRecording(name RecordingName) error {
	return m.withRecording(name, func(r *LiveRecording) error { r.Stop(); return nil })
}

// CancelRecording stops a live recording and discards it.
func (m *Manager) CancelRecording(name RecordingName) error {
	return m.withRecording(name, func(r *LiveRecording) error { r.Cancel(); return nil })
}

// PauseRecording pauses (skipping the paused time) or resumes a live
// recording, on behalf of an ARI application.
func (m *Manager) PauseRecording(name RecordingName, on bool) error {
	return m.PauseRecordingAs(name, on, PauseSkip, "ari")
}

// PauseRecordingAs pauses or resumes a live recording (LiveRecording.PauseAs).
func (m *Manager) PauseRecordingAs(name RecordingName, on bool, behavior, by string) error {
	return m.withRecording(name, func(r *LiveRecording) error { return r.PauseAs(on, behavior, by) })
}

// MuteRecording mutes or unmutes a live recording.
func (m *Manager) MuteRecording(name RecordingName, on bool) error {
	return m.withRecording(name, func(r *LiveRecording) error { return r.Mute(on) })
}
