package call

import "github.com/tapedeck/tapedeck/internal/event"

// CallerID is ARI's CallerID model.
type CallerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

// DialplanCEP is ARI's dialplan location model.
type DialplanCEP struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int64  `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

// ChannelJSON is ARI's Channel model.
type ChannelJSON struct {
	ID           ChannelID         `json:"id"`
	ProtocolID   string            `json:"protocol_id"`
	Name         string            `json:"name"`
	State        string            `json:"state"`
	Caller       CallerID          `json:"caller"`
	Connected    CallerID          `json:"connected"`
	Accountcode  string            `json:"accountcode"`
	Dialplan     DialplanCEP       `json:"dialplan"`
	Creationtime event.Time        `json:"creationtime"`
	Language     string            `json:"language"`
	Channelvars  map[string]string `json:"channelvars,omitempty"`
}

// Events published for channels. Base comes first so that the bus can fill
// in "application" per recipient.

// StasisStart is sent when a channel enters an application.
type StasisStart struct {
	event.Base
	Args    []string    `json:"args"`
	Channel ChannelJSON `json:"channel"`
}

// ChannelEvent is the shape of events that carry only a channel
// (StasisEnd, ChannelStateChange, ChannelCreated, ChannelUnhold).
type ChannelEvent struct {
	event.Base
	Channel ChannelJSON `json:"channel"`
}

// ChannelDtmfReceived reports a DTMF digit received on a channel.
type ChannelDtmfReceived struct {
	event.Base
	Digit      string      `json:"digit"`
	DurationMs int         `json:"duration_ms"`
	Channel    ChannelJSON `json:"channel"`
}

// ChannelHangupRequest is sent when a hangup is requested.
type ChannelHangupRequest struct {
	event.Base
	Cause   Cause       `json:"cause"`
	Soft    bool        `json:"soft,omitempty"`
	Channel ChannelJSON `json:"channel"`
}

// ChannelDestroyed is the last event of a channel.
type ChannelDestroyed struct {
	event.Base
	Cause    Cause       `json:"cause"`
	CauseTxt string      `json:"cause_txt"`
	Channel  ChannelJSON `json:"channel"`
}

// ChannelVarset reports a variable change.
type ChannelVarset struct {
	event.Base
	Variable string       `json:"variable"`
	Value    string       `json:"value"`
	Channel  *ChannelJSON `json:"channel,omitempty"`
}

// ChannelHold reports a hold request.
type ChannelHold struct {
	event.Base
	Musicclass string      `json:"musicclass,omitempty"`
	Channel    ChannelJSON `json:"channel"`
}

// ChannelCallerID reports a change of a channel's caller id
// (ChannelCallerId); tapedeck's presentation is always allowed, not
// screened (0).
type ChannelCallerID struct {
	event.Base
	CallerPresentation    int         `json:"caller_presentation"`
	CallerPresentationTxt string      `json:"caller_presentation_txt"`
	Channel               ChannelJSON `json:"channel"`
}

// EventTypes lists every event type the call model publishes; events.json
// must declare each (ari-client throws on an undeclared type).
var EventTypes = []string{
	"StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDtmfReceived",
	"ChannelHangupRequest", "ChannelDestroyed", "ChannelVarset", "ChannelHold", "ChannelUnhold",
	"RecordingStarted", "RecordingFinished", "RecordingFailed", "RecordingDegraded",
	"PlaybackStarted", "PlaybackContinuing", "PlaybackFinished", "Dial",
	"BridgeCreated", "BridgeDestroyed", "ChannelEnteredBridge", "ChannelLeftBridge",
	"ChannelCreated", "ChannelTalkingStarted", "ChannelTalkingFinished",
	"ChannelDialplan", "ChannelConnectedLine", "ChannelCallerId", "ApplicationMoveFailed",
}
