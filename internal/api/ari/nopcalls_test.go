package ari

import (
	"context"
	"io"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// nopCalls is a call model where every operation succeeds and does
// nothing: the parameter audit runs each handler to its end, to see which
// parameters it reads. It implements every method, so a new one breaks
// the build here and is audited too.
type nopCalls struct{}

var _ call.Calls = nopCalls{}

func (nopCalls) Channels() (_ []call.ChannelJSON) { return }

func (nopCalls) CallSid(id call.ChannelID) (_ string, _ error) { return }

func (nopCalls) AppendCallSummaries(dst []call.CallSummary) []call.CallSummary { return dst }

func (nopCalls) Channel(id call.ChannelID) (_ call.ChannelJSON, _ error) { return }

func (nopCalls) Count() (_ int) { return }

func (nopCalls) Originate(o call.OriginateOptions) (_ call.ChannelJSON, _ error) { return }

func (nopCalls) CreateChannel(o call.OriginateOptions) (_ call.ChannelJSON, _ error) { return }

func (nopCalls) Dial(id call.ChannelID, caller call.ChannelID, timeout time.Duration) (_ error) {
	return
}

func (nopCalls) Hangup(id call.ChannelID, cause call.Cause) (_ error) { return }

func (nopCalls) Answer(id call.ChannelID) (_ error) { return }

func (nopCalls) Ring(id call.ChannelID, on bool) (_ error) { return }

func (nopCalls) Progress(id call.ChannelID) (_ error) { return }

func (nopCalls) SendDTMF(id call.ChannelID, o call.DTMFOptions) (_ error) { return }

func (nopCalls) Mute(id call.ChannelID, direction string, on bool) (_ error) { return }

func (nopCalls) Hold(id call.ChannelID, on bool) (_ error) { return }

func (nopCalls) Silence(id call.ChannelID, on bool) (_ error) { return }

func (nopCalls) Var(id call.ChannelID, name string) (_ string, _ error) { return }

func (nopCalls) SetVar(id call.ChannelID, name, value string, unset bool) (_ error) { return }

func (nopCalls) ReportVar(id call.ChannelID, name string) (_ error) { return }

func (nopCalls) RTPStats(id call.ChannelID) (_ rtpsess.Stats, _ error) { return }

func (nopCalls) Play(id call.ChannelID, o call.PlayOptions) (_ call.PlaybackJSON, _ error) { return }

func (nopCalls) Record(id call.ChannelID, o call.RecordOptions) (_ call.LiveRecordingJSON, _ error) {
	return
}

func (nopCalls) Snoop(id call.ChannelID, o call.SnoopOptions) (_ call.ChannelJSON, _ error) { return }

func (nopCalls) ExternalMedia(o call.ExternalMediaOptions) (_ call.ChannelJSON, _ error) { return }

func (nopCalls) Move(id call.ChannelID, app, appArgs string) (_ error) { return }

func (nopCalls) Continue(id call.ChannelID, o call.ContinueOptions) (_ error) { return }

func (nopCalls) Redirect(id call.ChannelID, endpoint string) (_ error) { return }

func (nopCalls) StartMOH(id call.ChannelID, class string) (_ error) { return }

func (nopCalls) StopMOH(id call.ChannelID) (_ error) { return }

func (nopCalls) Bridges() (_ []call.BridgeJSON) { return }

func (nopCalls) Bridge(id call.BridgeID) (_ call.BridgeJSON, _ error) { return }

func (nopCalls) CreateBridge(id call.BridgeID, typ, name string) (_ call.BridgeJSON, _ error) { return }

func (nopCalls) DestroyBridge(id call.BridgeID) (_ error) { return }

func (nopCalls) AddToBridge(id call.BridgeID, ch call.ChannelID, o call.JoinOptions) (_ error) {
	return
}

func (nopCalls) RemoveFromBridge(id call.BridgeID, ch call.ChannelID) (_ error) { return }

func (nopCalls) PlayOnBridge(id call.BridgeID, o call.PlayOptions) (_ call.PlaybackJSON, _ error) {
	return
}

func (nopCalls) RecordBridge(id call.BridgeID, o call.RecordOptions, stereo bool) (_ call.LiveRecordingJSON, _ error) {
	return
}

func (nopCalls) StartBridgeMOH(id call.BridgeID, class string) (_ error) { return }

func (nopCalls) BridgeVar(id call.BridgeID, name string) (_ string, _ error) { return }

func (nopCalls) SetBridgeVar(id call.BridgeID, name, value string, unset, report bool) (_ error) {
	return
}

func (nopCalls) StopBridgeMOH(id call.BridgeID) (_ error) { return }

func (nopCalls) Playback(id call.PlaybackID) (_ call.PlaybackJSON, _ error) { return }

func (nopCalls) StopPlayback(id call.PlaybackID) (_ error) { return }

func (nopCalls) ControlPlayback(id call.PlaybackID, op call.PlaybackOp) (_ error) { return }

func (nopCalls) LiveRecording(name call.RecordingName) (_ call.LiveRecordingJSON, _ error) { return }

func (nopCalls) StopRecording(name call.RecordingName) (_ error) { return }

func (nopCalls) CancelRecording(name call.RecordingName) (_ error) { return }

func (nopCalls) PauseRecording(name call.RecordingName, on bool) (_ error) { return }

func (nopCalls) PauseRecordingAs(name call.RecordingName, on bool, behavior, by string) (_ error) {
	return
}

func (nopCalls) MuteRecording(name call.RecordingName, on bool) (_ error) { return }

func (nopCalls) RecordCall(id call.ChannelID, o call.CallRecordOptions) (_ call.LiveRecordingJSON, _ error) {
	return
}

func (nopCalls) PlayCall(id call.ChannelID, o call.PlayOptions) (_ call.PlaybackJSON, _ error) {
	return
}

func (nopCalls) PlayDone(id call.PlaybackID) (_ <-chan struct{}) { return }

func (nopCalls) SendDTMFCall(id call.ChannelID, o call.DTMFOptions) (_ error) { return }

func (nopCalls) AnswerCall(id call.ChannelID) (_ error) { return }

func (nopCalls) CallDone(id call.ChannelID) (_ <-chan struct{}) { return }

func (nopCalls) CollectDigits(ctx context.Context, id call.ChannelID, max int, finish string, timeout time.Duration) (_ string, _ error) {
	return
}

func (nopCalls) ConnectCalls(a, b call.ChannelID) (_ call.BridgeID, _ error) { return }

func (nopCalls) ListStored() (_ []call.StoredRecordingJSON, _ error) { return }

func (nopCalls) GetStored(name string) (_ *call.StoredRecording, _ error) {
	return &call.StoredRecording{}, nil
}

func (nopCalls) OpenStored(ctx context.Context, rec *call.StoredRecording) (_ io.ReadSeekCloser, _ time.Time, _ error) {
	return
}

func (nopCalls) DeleteStored(name string, by meta.Audit) (_ error) { return }

func (nopCalls) CopyStored(src, dst string) (*call.StoredRecording, error) {
	return &call.StoredRecording{}, nil
}
