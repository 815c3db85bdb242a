package call

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/gopool"
	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/media/mix"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// RecordingState is a live recording's state as ARI reports it.
type RecordingState string

func (s RecordingState) String() string { return string(s) }

// Recording states as ARI reports them.
const (
	RecQueued    RecordingState = "queued"
	RecRecording RecordingState = "recording"
	RecPaused    RecordingState = "paused"
	RecDone      RecordingState = "done"
	RecFailed    RecordingState = "failed"
	RecCanceled  RecordingState = "canceled"
)

// silenceDetector classifies a recording's frames for maxSilenceSeconds
// and its talking and silence durations (recorder.VAD, recorder.DSP).
type silenceDetector interface {
	Frame(pcm []int16) bool
	TalkingDuration() time.Duration
	SilenceDuration() time.Duration
	SilentFor() time.Duration
}

// RecordOptions are the parameters of POST .../record.
type RecordOptions struct {
	Name        string
	Format      string
	MaxDuration time.Duration // 0: the global cap (Options.MaxRecording), which also bounds it
	MaxSilence  time.Duration // 0: no silence detection
	// SilenceThreshold, when set, detects silence as Asterisk does
	// (recorder.DSP: average magnitude below it); 0 uses the adaptive VAD,
	// which learns steady noise as silence.
	SilenceThreshold int
	IfExists         string // fail, overwrite, append
	Beep             bool
	TerminateOn      string // none, any, *, #
	// Root, when set, is the directory the name is resolved in instead of
	// the recordings root: an operator-allowed directory (the command
	// API's RecordPath). The caller checks that it is allowed.
	Root string
	// Callback, when set, is kept with the recording's catalog row from
	// its first write (meta.Recording.Callback): the notification of its
	// end (Ozeki's FinishedUrl), which the catalog then queues with the
	// final row, here or after a crash.
	Callback *meta.StatusCallback

	// Track is the audio recorded of a channel (Twilio's RecordingTrack):
	// TrackInbound what its party sends (what tapedeck receives, also in
	// a bridge), TrackOutbound what its party hears (what tapedeck sends
	// it: prompts, the bridge's mix), "" as before (a channel's received
	// audio; in a bridge, the bridge's mix), TrackBoth a bridged
	// channel's bridge mix and an unbridged channel's two directions
	// aligned by time (recorder.Duplex; dual: one per channel).
	Track string
	// TrimSilence trims the leading and trailing silence of the file when
	// the recording is done (Twilio's Trim=trim-silence; WAV only).
	TrimSilence bool
	// AbsentBelow: the recording is catalogued absent when it holds less
	// audio than this (Twilio's recordings: a second); 0: only without
	// any audio.
	AbsentBelow time.Duration
	// AbsentSilent: the recording is catalogued absent (Twilio's error
	// 16102) when it holds audio but no frame of it is sound (average
	// magnitude under recorder.DSPThreshold, Asterisk's silence
	// detector).
	AbsentSilent bool

	// OnDegraded, if set, runs once when the recording's loss passes
	// Options.DegradedLossPercent, with its quality then: on its own
	// goroutine while it records, before RecordingFinished at its end.
	OnDegraded func(*meta.Quality)

	// dual puts a TrackBoth recording of a channel that is not bridged
	// on two channels: what it receives left, what it sends right.
	dual bool
	// rowFirst writes the recording's first catalog row before it starts
	// (CallRecordOptions.RowFirst).
	rowFirst bool

	// policy describes a recording made by the users' flags.
	policy policyInfo
	// first is the bridge's first party when a bridge recording starts
	// before anyone has joined (a policy recording: the catalog's caller).
	first *Channel
}

// Recording tracks (RecordOptions.Track).
const (
	TrackInbound  = "inbound"
	TrackOutbound = "outbound"
	TrackBoth     = "both"
)

// sentRecordingTap feeds a recording what its channel sends
// (TrackOutbound). Sent frames have no RTP numbering and come from more
// than one goroutine: the tap numbers them, under its lock, on a clock of
// its own.
type sentRecordingTap struct {
	NoOpTap
	r   *LiveRecording
	mu  sync.Mutex
	ts  uint32
	seq uint16
}

func (t *sentRecordingTap) Audio(f *Frame) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ts += uint32(len(f.PCM))
	t.seq++
	t.r.push(sentSSRC, t.seq, t.ts, f.PCM, f.At)
}

// sentSSRC is the source id of what a channel sends, for its recording.
const sentSSRC = 0x5e47

// duplexSentTap feeds a TrackBoth recording of a channel that is not
// bridged what the channel sends, at the time it is sent.
type duplexSentTap struct {
	NoOpTap
	r *LiveRecording
}

func (t duplexSentTap) Audio(f *Frame) { t.r.pushSent(f.PCM, f.At) }

// policyInfo is what the catalog keeps of a policy recording.
type policyInfo struct {
	tenant, direction, owners string
}

// LiveRecordingJSON is ARI's LiveRecording model.
type LiveRecordingJSON struct {
	Name            string         `json:"name"`
	Format          string         `json:"format"`
	TargetURI       string         `json:"target_uri"`
	State           RecordingState `json:"state"`
	Duration        *int           `json:"duration,omitempty"`
	TalkingDuration *int           `json:"talking_duration,omitempty"`
	SilenceDuration *int           `json:"silence_duration,omitempty"`
	Cause           string         `json:"cause,omitempty"`
	// Quality is tapedeck's extension: how complete the recording is so
	// far (packets, loss, silence inserted, jitter, paused intervals).
	Quality *meta.Quality `json:"quality,omitempty"`
}

// RecordingEvent is RecordingStarted, RecordingFinished, RecordingFailed
// or RecordingDegraded (tapedeck's: the loss passed
// recording.degraded_loss_percent).
type RecordingEvent struct {
	event.Base
	Recording LiveRecordingJSON `json:"recording"`
}

// LiveRecording is a recording in progress on a channel.
type LiveRecording struct {
	// First, what the media path touches for a packet (pushPayload, for
	// every packet of every call; each call's are cold again at the
	// poller's next round): the meter's, the recording's and the queue's
	// in the first six cache lines (the struct's allocation is 64-byte
	// aligned), rather than ~12 lines spread over the struct and the
	// meter's own allocation. Keep cold fields out of it.

	// meterBuf is meter's Meter for a channel recording (its first two
	// lines are what Packet touches; guarded by mu).
	meterBuf recorder.Meter
	// mixIn is the bridge whose mix feeds a channel recording while its
	// channel is connected to another party by third-party control
	// (ConnectCalls: an OzML Forward after a Record): the recording then
	// holds both parties. nil: it takes the channel's own audio.
	mixIn atomic.Pointer[Bridge]
	// mu guards meterBuf, the fields from here to vad, claimed, and those
	// from silent on; held on the media path, never across I/O.
	mu       sync.Mutex
	state    RecordingState
	writer   recorder.Writer
	timeline *recorder.Timeline
	// meter counts a channel recording's packets (nil for a bridge
	// recording); it points at meterBuf.
	meter   *recorder.Meter
	duplex  *recorder.Duplex
	cause   string
	written int64 // samples written while recording (not paused)
	pushAt  time.Time
	paused  bool
	muted   bool
	// heard: a frame written reached the silence threshold (AbsentSilent).
	heard    bool
	degraded bool
	// hasMaxSilence, absentSilent: opts.MaxSilence > 0, opts.AbsentSilent
	// (opts does not change once the recording is made).
	hasMaxSilence, absentSilent bool
	gapsJudged                  uint64 // meter.Gaps() when the loss was last judged
	// partyGaps is the sum of a bridge recording's parties' Meter.Gaps,
	// kept as their packets are counted (partyPacket): the degraded check
	// of each packet reads it instead of every party's meter.
	partyGaps uint64
	// br is the bridge of a bridge recording (set at creation; read only):
	// a party's packet checks it (participantTap.count), so it is here.
	br      *Bridge
	maxSamp int64 // maxSamples(): opts.MaxDuration in samples
	// q is the bounded queue between the media path and the writer pool
	// (see startWriter); the media path never does file or pipe
	// I/O and never waits for it.
	q   recQueue
	vad silenceDetector

	m       *Manager
	claimed bool     // its name is claimed in a shared catalog (claimName; guarded by mu)
	ch      *Channel // channel recordings
	name    string
	format  recorder.Format
	target  string
	opts    RecordOptions
	path    string // file path with extension
	stereo  bool   // bridge recordings: one party per channel; duplex ones: one direction per channel
	source  string // catalog source: ari, policy (dialplan Record), ...

	// catMu orders the recording's catalog writes: the end waits for a
	// start write in flight (a hangup right after the answer), and a
	// start that comes after the end is not written (it would list a
	// finished recording as in progress, or race the end's insert for
	// the name). Held across the write, with no other lock of this
	// package held (doc.go).
	catMu       sync.Mutex
	catFinished bool
	// rowWritten: the first row is written (guarded by catMu; set by
	// firstRow's write before start runs, or by start's own).
	rowWritten bool
	// cdr is the record of the call whose hangup ends the recording,
	// offered by the channel (offerCDR) to go with the recording's final
	// row; cdrTaken once catalogFinal has handed it to the catalog;
	// cdrClosed once the offer is over (taken by catalogFinal, or
	// withdrawn by cdrHandedOver). Guarded by cdrMu, not catMu: the
	// channel's hangup asks whether the record was taken while the final
	// write may still be waiting on a stalled database with catMu held.
	cdrMu     sync.Mutex
	cdr       *meta.CDR
	cdrTaken  bool
	cdrClosed bool

	// hangup: the recording ends because its channel hangs up; its
	// catalog entry's upload then runs in the background only.
	hangup atomic.Bool
	// attached is closed once the recording is attached to its target
	// and records what reaches it (see waitAttached).
	attached chan struct{}
	// opened is set while start creates the file (without r.mu held) and
	// closed when it is done; finish waits for it.
	opened chan struct{}

	// stored: the samples (all channels) that reached the file, noted
	// when a failed writer's file is closed (noteStored; storedSet).
	stored    int64
	storedSet bool

	silent   bool // set at the end: audio was written, none of it sound
	silence  []int16
	finished bool
	// startedAt is when writing began; firstMember the bridge's first
	// party at the start (for the catalog's CallSid).
	startedAt   time.Time
	firstMember *Channel
	ending      bool // the media path has asked for the end once
	stopReason  string
	// endReason is why the recording ended (End*), set once by finish
	// before the catalog's final write; endCh, when set, is the channel
	// whose end is the call's hangup (a call recording's: RecordCall).
	endReason string
	endCh     *Channel
	done      chan struct{}
	// onDone runs when done closes (afterDone), instead of a goroutine
	// per recording waiting for it; doneMu guards it and ended.
	doneMu     sync.Mutex
	onDone     []func()
	ended      bool
	emit       func([]int16) // timeline output, bound once (no per-packet closure)
	sentDetach func()        // TrackOutbound, duplex: takes the sent tap off
	// duplex (above) aligns what a channel that is not bridged receives
	// and sends (TrackBoth): the timeline's output and the sent audio go
	// through it, into duplexEmit; pushAt (above) is the arrival of the
	// packet being pushed, for its clock.
	duplexEmit func(mixed, left, right []int16)

	// Completeness (meta.Quality). meter (above) counts a channel
	// recording's packets; lossSilence the silence earlier timelines inserted (a
	// resume starts a fresh one); pauses the paused intervals, the last
	// one open while pauseOpen (pauseMono its start, for its length).
	lossSilence int64
	pauses      []meta.Paused
	pauseOpen   bool
	pauseMono   time.Time
	endedAt     time.Time
	// stalled: it ended with a write to its file not returned (the disk
	// stalled); the catalog then leaves the file alone (catalog.Info.Stalled).
	stalled bool
	// The RTP session drops copies before they reach the recording:
	// its duplicate counter, from dupBase at the start (dupAcc carries
	// what earlier sources counted; a new source restarts the counter).
	dupBase, dupLast, dupAcc uint64
	dupsFrozen               bool // at the end: dupAcc is the count
	// parties count a bridge recording's packets, one per party heard.
	parties []*partyMeter
}

// partyMeter counts one party's packets for a bridge recording: what its
// channel's tap hands the bridge (Meter), the copies its RTP session
// dropped, and what the bridge's play-out buffer dropped late and played
// as silence for it, from its first packet in the recording to its leave
// (or the recording's end).
type partyMeter struct {
	ch                          *Channel
	part                        *mix.Participant
	meter                       *recorder.Meter
	dupBase, lateBase, lostBase uint64
	left                        bool // frozen: dups, late, lostFrames are the counts
	dups, late, lostFrames      uint64
}

// partyCache is a bridge party's tap's memory of its meter in a recording.
type partyCache struct {
	r  *LiveRecording
	pm *partyMeter
}

func sub0(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// counts is the party's figures so far.
func (p *partyMeter) counts() (c recorder.MeterCounts, lostFrames uint64) {
	c = p.meter.Counts()
	dups, late, lost := p.dups, p.late, p.lostFrames
	if !p.left {
		st, ps := p.ch.media.Stats(), p.part.Stats()
		dups, late, lost = sub0(st.Duplicates, p.dupBase), sub0(ps.LateDrops, p.lateBase), sub0(ps.FramesLost, p.lostBase)
	}
	c.Duplicated += int64(dups)
	c.Late += int64(late)
	return c, lost
}

func (p *partyMeter) freeze() {
	if p.left {
		return
	}
	st, ps := p.ch.media.Stats(), p.part.Stats()
	p.dups, p.late, p.lostFrames = sub0(st.Duplicates, p.dupBase), sub0(ps.LateDrops, p.lateBase), sub0(ps.FramesLost, p.lostBase)
	p.left = true
}

// partyPacket counts one packet of a bridge party (the media path). last,
// when not nil, is the caller's memory of the party's meter (the tap's,
// written only by its channel's media path): checked under r.mu, it spares
// the walk through r.parties (each party's meter a cache line of its own).
func (r *LiveRecording) partyPacket(ch *Channel, part *mix.Participant, last *partyCache, ssrc uint32, seq uint16, ts uint32, at time.Time) {
	r.mu.Lock()
	if r.state != RecRecording || r.writer == nil {
		r.mu.Unlock()
		return
	}
	var pm *partyMeter
	if last != nil && last.r == r && last.pm.ch == ch && last.pm.part == part && !last.pm.left {
		pm = last.pm // the one r.parties holds for the party (at most one is not left)
	} else {
		for _, p := range r.parties {
			if p.ch == ch && p.part == part && !p.left {
				pm = p
			}
		}
		if pm == nil {
			st, ps := ch.media.Stats(), part.Stats()
			pm = &partyMeter{ch: ch, part: part, meter: recorder.NewMeter(audio.SampleRate),
				dupBase: st.Duplicates, lateBase: ps.LateDrops, lostBase: ps.FramesLost}
			r.parties = append(r.parties, pm)
		}
		if last != nil {
			*last = partyCache{r: r, pm: pm}
		}
	}
	g := pm.meter.Gaps()
	pm.meter.Packet(ssrc, seq, ts, at)
	r.partyGaps += pm.meter.Gaps() - g
	degraded := r.checkDegradedLocked(false)
	r.mu.Unlock()
	if degraded {
		go r.reportDegraded()
	}
}

// partyLeft ends a party's figures (it left the bridge).
func (r *LiveRecording) partyLeft(ch *Channel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.parties {
		if p.ch == ch {
			p.freeze()
		}
	}
}

// lossLocked is what the degraded check needs of countsLocked, Expected and
// Lost, from the meters alone: it runs for every packet of a bridge party,
// where countsLocked would also take each party's session and play-out
// locks for the duplicate and late counters.
func (r *LiveRecording) lossLocked() (c recorder.MeterCounts, ok bool) {
	if r.meter != nil {
		return r.meter.Counts(), true
	}
	for _, p := range r.parties {
		pc := p.meter.Counts()
		c.Expected += pc.Expected
		c.Received += pc.Received
		c.Lost += pc.Lost
	}
	return c, len(r.parties) > 0
}

// countsLocked is the recording's packet figures: its channel's, or a
// bridge recording's parties' summed (jitter: the worst party's); ok is
// false when none are counted.
func (r *LiveRecording) countsLocked() (c recorder.MeterCounts, lossSilenceMs int64, ok bool) {
	if r.meter != nil {
		return r.meter.Counts(), 0, true
	}
	for _, p := range r.parties {
		pc, lost := p.counts()
		c.Expected += pc.Expected
		c.Received += pc.Received
		c.Lost += pc.Lost
		c.Late += pc.Late
		c.Duplicated += pc.Duplicated
		c.JitterMs = max(c.JitterMs, pc.JitterMs)
		lossSilenceMs += int64(lost) * 20
	}
	return c, lossSilenceMs, len(r.parties) > 0
}

// Name is the recording's name.
func (r *LiveRecording) Name() string { return r.name }

// Done is closed when the recording has finished (any final state).
func (r *LiveRecording) Done() <-chan struct{} { return r.done }

// JSON snapshots the recording.
func (r *LiveRecording) JSON() LiveRecordingJSON {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jsonLocked()
}

func (r *LiveRecording) jsonLocked() LiveRecordingJSON {
	j := LiveRecordingJSON{Name: r.name, Format: r.format.Name, TargetURI: r.target, State: r.state, Cause: r.cause,
		Quality: r.qualityLocked()}
	if r.state == RecDone || r.state == RecCanceled || r.state == RecFailed {
		d := int((r.written + audio.SampleRate/2) / audio.SampleRate)
		j.Duration = &d
		if r.opts.MaxSilence > 0 && r.vad != nil {
			talk := int(r.vad.TalkingDuration().Round(time.Second) / time.Second)
			sil := int(r.vad.SilenceDuration().Round(time.Second) / time.Second)
			j.TalkingDuration, j.SilenceDuration = &talk, &sil
		}
	}
	return j
}

// Record starts recording the channel's incoming audio. It returns the
// queued recording at once (201); the beep, the start and any failure
// follow as events.
func (ch *Channel) Record(o RecordOptions) (*LiveRecording, error) {
	ch.mu.Lock()
	err := ch.checkLocked(false)
	ch.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return ch.record(o, "ari")
}

// record starts a recording without the Stasis check (dialplan Record()).
func (ch *Channel) record(o RecordOptions, source string) (*LiveRecording, error) {
	m := ch.m
	ch.mu.Lock()
	bridged := ch.bridge != nil
	gone := ch.hangingUp
	ch.mu.Unlock()
	if gone {
		return nil, errChannelNotFound
	}
	if bridged && o.Track != TrackInbound && o.Track != TrackOutbound {
		// (One direction of a bridged channel is its own audio, not the
		// bridge's.)
		return nil, errf(ErrInvalidState, "Channel is in a bridge; record the bridge instead")
	}
	switch o.TerminateOn {
	case "", "none", "any", "*", "#":
	default:
		return nil, errf(ErrInvalidArgument, "terminateOn invalid")
	}
	mode, err := ifExistsMode(o.IfExists)
	if err != nil {
		return nil, err
	}
	f, err := recorder.Lookup(o.Format)
	if err != nil {
		return nil, errf(ErrUnsupported, "%v", err)
	}
	if mode == recorder.Append && !f.AppendOK {
		return nil, errf(ErrUnsupported, "format %s cannot be appended to", f.Name)
	}
	base, err := recorder.ResolveName(nonEmpty(o.Root, m.opts.RecordingsDir), o.Name)
	if err != nil {
		return nil, errf(ErrInvalidArgument, "Recording name invalid")
	}
	if o.dual && (o.Track != TrackBoth || bridged) {
		return nil, errf(ErrUnsupported, "A dual-channel recording of a channel records both of its directions")
	}
	if o.dual && f.Name != "wav" {
		return nil, errf(ErrUnsupported, "format %s cannot hold two channels; use wav", f.Name)
	}
	o.MaxDuration = m.capDuration(o.MaxDuration)
	rec := &LiveRecording{
		m: m, ch: ch, name: o.Name, format: f, target: "channel:" + ch.id, source: source, stereo: o.dual,
		path: base + "." + f.Ext, state: RecQueued, done: make(chan struct{}), attached: make(chan struct{}),
	}
	rec.setOpts(o)
	m.recMu.Lock()
	if err := m.nameBusyLocked(o.Name); err != nil {
		m.recMu.Unlock()
		return nil, err
	}
	if mode == recorder.Fail {
		if existing := m.storedFormats(base); len(existing) > 0 {
			m.recMu.Unlock()
			return nil, errf(ErrConflict, "Recording already exists")
		}
	}
	m.live[o.Name] = rec
	m.recMu.Unlock()
	if err := m.claimName(rec, mode); err != nil {
		return nil, err
	}
	if err := rec.firstRow(); err != nil {
		return nil, err
	}
	gopool.Go(func() { rec.start(mode) }) // kept goroutine: see package gopool
	return rec, nil
}

// firstRow writes a rowFirst recording's first catalog row (in progress,
// with its Callback) before the recording starts; a row the catalog
// refuses gives the recording up (it never started: no file, no events,
// no final row) and is the error (ErrUnavailable). A recording that ended
// (its call hung up) before its row was written has none and returns
// the channel's ErrNotFound; one that ends after keeps its row
// (catalogQueuedEnd).
func (r *LiveRecording) firstRow() error {
	if !r.opts.rowFirst || r.m.opts.Catalog == nil {
		return nil
	}
	r.mu.Lock()
	r.startedAt = time.Now() // (start keeps it: the row's start)
	r.mu.Unlock()
	if err := r.catalogStarted(); err != nil {
		m := r.m
		m.recMu.Lock()
		if m.live[r.name] == r {
			delete(m.live, r.name)
		}
		m.recMu.Unlock()
		r.releaseName()
		return errf(ErrUnavailable, "Recording not started: the catalog did not take its row: %v", err)
	}
	r.catMu.Lock()
	written := r.rowWritten
	r.catMu.Unlock()
	if !written {
		// Ended (its call hung up) before its row was written: no row,
		// nothing recorded, nothing owed (catalogQueuedEnd).
		return errChannelNotFound
	}
	return nil
}

// capDuration is a recording's length cap: the one asked for, within the
// global cap.
func (m *Manager) capDuration(d time.Duration) time.Duration {
	if d <= 0 || d > m.opts.MaxRecording {
		return m.opts.MaxRecording
	}
	return d
}

// Why a recording stopped by itself (StopReason).
const (
	StopMaxDuration = "max-duration" // it reached its maximum length
	StopMaxSilence  = "max-silence"  // maxSilenceSeconds of silence
)

// endReasonLocked is why the recording ended (End*), once its final state
// is set: failed, a limit or finish digit that stopped it (its
// stopReason), its call's hangup, or else a stop.
func (r *LiveRecording) endReasonLocked() string {
	switch {
	case r.state == RecFailed:
		return EndFailed
	case r.stopReason == StopMaxDuration:
		return EndDuration
	case r.stopReason == StopMaxSilence:
		return EndSilence
	case r.stopReason == StopFinishDigit:
		return EndDigit
	case r.hangup.Load():
		return EndHangup
	}
	if r.endCh != nil {
		select {
		case <-r.endCh.done:
			return EndHangup
		default:
		}
	}
	return EndStopped
}

// EndReason is why the recording ended (End*); "" while it has not.
func (r *LiveRecording) EndReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endReason
}

// began reports whether the recording's file was opened (false: it ended
// before it began, or failed to create it).
func (r *LiveRecording) began() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writer != nil
}

// StopReason is why the recording stopped by itself (StopMaxDuration,
// StopMaxSilence), or "" when it was stopped, canceled, failed or its target
// went away.
func (r *LiveRecording) StopReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopReason
}

// maxSamples is the recording's length cap in samples.
func (r *LiveRecording) maxSamples() int64 {
	return r.maxSamp
}

// setOpts sets the recording's options and the copies of them that the
// media path reads (hot, at the struct's start): once, when it is made.
func (r *LiveRecording) setOpts(o RecordOptions) {
	r.opts = o
	r.maxSamp = int64(o.MaxDuration) * audio.SampleRate / int64(time.Second)
	r.hasMaxSilence, r.absentSilent = o.MaxSilence > 0, o.AbsentSilent
}

func ifExistsMode(s string) (recorder.IfExists, error) {
	switch s {
	case "", "fail":
		return recorder.Fail, nil
	case "overwrite":
		return recorder.Overwrite, nil
	case "append":
		return recorder.Append, nil
	}
	return 0, errf(ErrInvalidArgument, "ifExists invalid")
}

// start answers the channel if needed, plays the beep, opens the file and
// attaches the recording to the channel's media.
func (r *LiveRecording) start(mode recorder.IfExists) {
	if hook := testStartReturned.Load(); hook != nil {
		defer (*hook)(r)
	}
	ch := r.ch
	// Without a beep the recording is attached before the answer, so the
	// caller's first packet is in the file.
	answerFirst := ch != nil && r.opts.Beep
	if answerFirst {
		if !r.answerTarget() {
			return
		}
		ch.playBeep()
	}
	// The header is rewritten at the end only (about one write a second,
	// not two): a crash leaves the recording listed in the journal (or its
	// in-progress marker), and Recover at the next start sets the sizes
	// from the file.
	opts := append([]recorder.Option{recorder.WithHeaderAtEnd()}, r.m.opts.RecorderOptions...)
	if r.m.opts.Journal != nil {
		opts = append(opts, recorder.WithJournal(r.m.opts.Journal))
	}
	if r.stereo {
		opts = append(opts, recorder.WithChannels(2))
	}
	// The file is created without r.mu held (JSON and the API never wait
	// for a disk); a stop or cancel either comes first (nothing is created)
	// or waits for the creation (opened) and finds the recording started.
	r.mu.Lock()
	if r.finished { // stopped or canceled while queued
		r.mu.Unlock()
		return
	}
	opened := make(chan struct{})
	r.opened = opened
	r.mu.Unlock()
	w, err := recorder.Create(r.path, r.format, mode, opts...)
	r.mu.Lock()
	r.opened = nil
	close(opened)
	if err != nil {
		if r.cause == "" {
			r.cause = failureCause(err)
		}
		r.mu.Unlock()
		r.finish(RecFailed)
		return
	}
	r.writer = w
	var burst time.Duration
	if p := r.m.opts.Poller; p != nil {
		burst = p.SlowInterval()
	}
	r.q.initFor(r.queueSamples(), burst)
	r.startWriter(w, filepath.Dir(r.path))
	r.timeline = recorder.NewTimeline(audio.SampleRate, 60*time.Millisecond)
	if r.opts.SilenceThreshold > 0 {
		r.vad = recorder.NewDSP(audio.SampleRate, r.opts.SilenceThreshold)
	} else {
		r.vad = recorder.NewVAD(audio.SampleRate)
	}
	r.emit = r.writeLocked
	if ch != nil && r.opts.Track == TrackBoth {
		// Both directions of a channel that is not bridged, aligned by
		// time (a bridged one records the bridge instead).
		r.duplex = recorder.NewDuplex(audio.SampleRate)
		r.duplexEmit = r.writeDuplexLocked
		r.emit = func(pcm []int16) { r.duplex.Add(recorder.DuplexIn, pcm, r.pushAt, r.duplexEmit) }
	}
	if ch != nil {
		r.meterBuf.Init(audio.SampleRate)
		r.meter = &r.meterBuf
		r.gapsJudged = 0
		r.dupBase = ch.media.Stats().Duplicates
		r.dupLast = r.dupBase
	}
	r.state = RecRecording
	if !r.rowWritten {
		r.startedAt = time.Now()
	}
	r.mu.Unlock()
	r.logger().Info("recording started", "name", r.name, "format", r.format.Name, "path", r.path, "target", r.target)
	if hook := testBeforeAttach.Load(); hook != nil {
		(*hook)(r)
	}
	attached := false
	if ch != nil && r.opts.Track == TrackOutbound {
		var detach func()
		if detach, attached = ch.AttachSentTap(&sentRecordingTap{r: r}); attached {
			r.mu.Lock()
			r.sentDetach = detach
			r.mu.Unlock()
		}
	} else if ch != nil {
		attached = ch.attach(r)
		if attached && r.duplex != nil {
			var detach func()
			if detach, attached = ch.AttachSentTap(duplexSentTap{r: r}); attached {
				r.mu.Lock()
				r.sentDetach = detach
				r.mu.Unlock()
			}
		}
	} else {
		attached = r.br.attachRecording(r)
	}
	if !attached {
		if ch != nil {
			// A channel refuses a tap only once its hangup has begun: the
			// call ended (EndHangup), though the hangup has not come to its
			// recordings yet.
			r.hangup.Store(true)
		}
		r.finish(RecDone) // the target went away meanwhile
		return
	}
	// A stop or cancel that came while the file was being created found
	// the recording started but not yet attached: its detach took nothing
	// off. The recording is done: off its target again, and no
	// RecordingStarted after its end.
	r.mu.Lock()
	ended, sentDetach := r.finished, r.sentDetach
	r.mu.Unlock()
	if ended {
		if sentDetach != nil {
			sentDetach()
		}
		if ch != nil {
			ch.detach(r)
		} else {
			r.br.detachRecording(r)
		}
		return
	}
	if r.attached != nil {
		close(r.attached)
	}
	if ch != nil && !answerFirst && !r.answerTarget() {
		return
	}
	if r.br != nil {
		r.br.mu.Lock()
		if len(r.br.members) > 0 {
			r.firstMember = r.br.members[0].ch
		}
		r.br.mu.Unlock()
	}
	if !r.rowWritten {
		r.catalogStarted()
	}
	r.publish("RecordingStarted")
}

// testBeforeAttach, set by tests only, runs in start just before the
// recording attaches to its target. Atomic: the start of a recording that
// ended while its file was being created goes on to this point after the
// recording is done, so it may read the hook while a later test sets it.
var testBeforeAttach atomic.Pointer[func(r *LiveRecording)]

// testStartReturned, set by tests only, runs when start returns.
var testStartReturned atomic.Pointer[func(r *LiveRecording)]

// waitAttached waits (at most d) until the recording is attached to its
// target, so that audio mixed from then on is in the file, or has ended.
func (r *LiveRecording) waitAttached(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.attached:
	case <-r.done:
	case <-t.C:
	}
}

// answerTarget answers the recorded channel if needed (record auto-answers).
func (r *LiveRecording) answerTarget() bool {
	if r.ch.State() == StateUp {
		return true
	}
	if err := r.ch.answer(); err != nil {
		r.fail(fmt.Sprintf("Could not answer the channel: %v", err))
		return false
	}
	return true
}

func failureCause(err error) string {
	switch {
	case errors.Is(err, recorder.ErrDiskFull):
		return "Disk full: " + err.Error()
	case errors.Is(err, os.ErrPermission):
		return "Permission denied: " + err.Error()
	case errors.Is(err, recorder.ErrExists):
		return "Recording already exists"
	}
	return err.Error()
}

func (r *LiveRecording) publish(typ string) {
	if r.br != nil {
		r.br.publish(&RecordingEvent{Base: r.m.base(typ), Recording: r.JSON()})
		return
	}
	ch := r.ch
	ch.mu.Lock()
	j := r.JSON()
	ch.publishLocked(&RecordingEvent{Base: ch.m.base(typ), Recording: j})
	ch.mu.Unlock()
}

// silence20ms is one 20 ms frame of silence, never written to.
var silence20ms [audio.FrameSamples]int16

// silentFrame returns n samples of silence (without allocating for a frame
// of the mixer's size).
func silentFrame(n int) []int16 {
	if n <= len(silence20ms) {
		return silence20ms[:n]
	}
	return make([]int16, n)
}

// pushMixed takes one tick of a bridge's audio: the mix, or for stereo the
// first two parties interleaved. Runs on the bridge's 20 ms clock (a
// Poller tick, or the bridge's own ticker goroutine).
func (r *LiveRecording) pushMixed(mixed []int16, left, right []int16) {
	r.mu.Lock()
	if r.state != RecRecording || r.writer == nil {
		r.mu.Unlock()
		return
	}
	if r.stereo {
		r.writeStereoLocked(mixed, left, right)
	} else {
		if r.muted {
			if cap(r.silence) < len(mixed) {
				r.silence = make([]int16, len(mixed))
			}
			mixed = r.silence[:len(mixed)]
			clear(mixed)
		}
		r.writeLocked(mixed)
	}
	r.afterWriteLocked()
}

// writeDuplexLocked is a duplex recording's output: the mix, or the two
// directions one per channel.
func (r *LiveRecording) writeDuplexLocked(mixed, left, right []int16) {
	if r.stereo {
		r.writeStereoLocked(mixed, left, right)
	} else {
		r.writeLocked(mixed)
	}
}

// afterWriteLocked stops or fails the recording when a limit is reached;
// it unlocks r.mu.
func (r *LiveRecording) afterWriteLocked() {
	stop, fail := r.checkLimitsLocked()
	if stop || fail != "" {
		if r.ending {
			stop, fail = false, ""
		}
		r.ending = true
	}
	r.mu.Unlock()
	switch {
	case fail != "":
		go r.fail(fail)
	case stop:
		go r.finish(RecDone)
	}
}

// pushSent takes one frame the channel sends (a duplex recording).
func (r *LiveRecording) pushSent(pcm []int16, at time.Time) {
	if r.mixIn.Load() != nil {
		return // the bridge's mix feeds it
	}
	r.mu.Lock()
	if r.state != RecRecording || r.writer == nil || r.duplex == nil {
		r.mu.Unlock()
		return
	}
	if r.muted {
		pcm = silentFrame(len(pcm))
	}
	r.duplex.Add(recorder.DuplexOut, pcm, at, r.duplexEmit)
	r.afterWriteLocked()
}

// writeStereoLocked writes left and right interleaved (the silence
// detector hears mixed).
func (r *LiveRecording) writeStereoLocked(mixed, left, right []int16) {
	n := len(mixed)
	if r.muted {
		left, right = nil, nil
	}
	if len(left) < n {
		left = silentFrame(n)
	}
	if len(right) < n {
		right = silentFrame(n)
	}
	n = int(min(int64(n), max(r.maxSamples()-r.written, 0)))
	left, right = left[:n], right[:n]
	if n == 0 {
		// Nothing left to write (the length limit).
	} else if buf, ok := r.q.reserve(2 * n); ok {
		// Interleaved straight into the queue (no copy from a buffer of
		// our own); all zeros is queued as a gap, as pushAudio does.
		var or int16
		for i := range n {
			l, rt := left[i], right[i]
			buf[2*i], buf[2*i+1] = l, rt
			or |= l | rt
		}
		r.q.commit(buf, or != 0)
	} else {
		// It does not fit unless it is silence: pushAudio decides.
		if cap(r.silence) < 2*n {
			r.silence = make([]int16, 2*n)
		}
		buf := r.silence[:2*n]
		for i := range n {
			buf[2*i], buf[2*i+1] = left[i], right[i]
		}
		if !r.q.pushAudio(buf) {
			if r.cause == "" {
				r.cause = r.overflowCause()
			}
			return
		}
	}
	r.hearLocked(mixed[:n])
	if r.opts.MaxSilence > 0 {
		for off := 0; off+audio.FrameSamples <= n; off += audio.FrameSamples {
			r.vad.Frame(mixed[off : off+audio.FrameSamples])
		}
	}
	r.written += int64(n)
}

// hearLocked notes whether audio written is sound (AbsentSilent), frame
// by frame, until the first frame that is.
func (r *LiveRecording) hearLocked(pcm []int16) {
	if !r.absentSilent || r.heard {
		return
	}
	for off := 0; off < len(pcm); off += audio.FrameSamples {
		if recorder.Talking(pcm[off:min(off+audio.FrameSamples, len(pcm))], recorder.DSPThreshold) {
			r.heard = true
			return
		}
	}
}

// push takes one decoded frame from the media path.
func (r *LiveRecording) push(ssrc uint32, seq uint16, ts uint32, pcm []int16, now time.Time) {
	if r.mixIn.Load() != nil {
		return // the bridge's mix feeds it (which has this frame too)
	}
	r.mu.Lock()
	if r.state != RecRecording || r.writer == nil {
		r.mu.Unlock()
		return
	}
	if r.meter != nil && r.meter.Packet(ssrc, seq, ts, now) {
		r.mu.Unlock() // a copy of a packet already placed
		return
	}
	if r.muted {
		pcm = silentFrame(len(pcm)) // (r.silence is a stereo recording's buffer)
	}
	r.placeLocked(ssrc, ts, pcm, now)
}

// placeLocked is push's second half, once the meter has counted the
// packet: the timeline places the frame, then the limits are checked. It
// unlocks r.mu.
func (r *LiveRecording) placeLocked(ssrc uint32, ts uint32, pcm []int16, now time.Time) {
	dropped := r.timeline.Dropped()
	r.pushAt = now
	r.timeline.Push(ssrc, ts, pcm, now, r.emit)
	if r.timeline.Dropped() != dropped {
		r.meter.Late()
	}
	r.afterPushLocked()
}

// pushPayload is push for a G.711 packet (µ-law, or A-law when alaw) that
// the channel has not decoded, when the recording is the channel's only
// tap: the payload is decoded straight into the recording's queue when the
// packet is the next in order (the common case), instead of into the
// channel's buffer and copied from there. scratch (at least the payload's
// length) is for the other cases, which go push's way. It reports false,
// having done nothing, when the recording needs push (a muted or duplex
// recording, one near its limit or that failed): the caller decodes and
// calls push.
func (r *LiveRecording) pushPayload(ssrc uint32, seq uint16, ts uint32, payload []byte, alaw bool, now time.Time, scratch []int16) bool {
	if r.mixIn.Load() != nil {
		return true // the bridge's mix feeds it (which has this frame too)
	}
	r.mu.Lock()
	if r.state != RecRecording || r.writer == nil {
		r.mu.Unlock()
		return true
	}
	n := len(payload)
	if r.meter == nil || r.muted || r.duplex != nil || r.cause != "" || r.maxSamples()-r.written < int64(n) {
		r.mu.Unlock()
		return false
	}
	if r.meter.Packet(ssrc, seq, ts, now) {
		r.mu.Unlock() // a copy of a packet already placed
		return true
	}
	if !r.timeline.PushInOrder(ssrc, ts, int64(n), now) {
		pcm := scratch[:n]
		codec.DecodeG711Sound(pcm, payload, alaw)
		r.placeLocked(ssrc, ts, pcm, now)
		return true
	}
	// The timeline would emit it at once (writeLocked, r.emit): decode it
	// into the queue.
	r.pushAt = now
	if buf, ok := r.q.reserve(n); ok {
		sound := codec.DecodeG711Sound(buf, payload, alaw)
		r.hearLocked(buf)
		if r.hasMaxSilence {
			for off := 0; off+audio.FrameSamples <= n; off += audio.FrameSamples {
				r.vad.Frame(buf[off : off+audio.FrameSamples])
			}
		}
		r.q.commit(buf, sound)
		r.written += int64(n)
	} else {
		// It does not fit unless it is silence: pushAudio decides.
		pcm := scratch[:n]
		codec.DecodeG711Sound(pcm, payload, alaw)
		r.writeLocked(pcm)
	}
	r.afterPushLocked()
	return true
}

// afterPushLocked ends push: the loss threshold and the limits. It unlocks
// r.mu.
func (r *LiveRecording) afterPushLocked() {
	degraded := r.checkDegradedLocked(false)
	stop, fail := r.checkLimitsLocked()
	if stop || fail != "" {
		if r.ending {
			stop, fail = false, ""
		}
		r.ending = true
	}
	r.mu.Unlock()
	if degraded {
		go r.reportDegraded()
	}
	switch {
	case fail != "":
		go r.fail(fail)
	case stop:
		go r.finish(RecDone)
	}
}

// minDegradedPackets is how many packets a recording expects before its
// loss is judged while it runs (a second of 20 ms packets): the first
// packets say little. At the end any count is judged.
const minDegradedPackets = 50

// checkDegradedLocked reports (once) that the loss passed the configured
// threshold.
func (r *LiveRecording) checkDegradedLocked(final bool) bool {
	if r.degraded {
		return false
	}
	// A recording's share lost only grows at a gap in its packets
	// (Meter.Gaps; a bridge recording's: in one of its parties', whose
	// gaps only add up): a packet that follows none needs no look, once
	// the share at the last gap was judged.
	gaps := uint64(0)
	if !final {
		if r.meter != nil {
			gaps = r.meter.Gaps()
		} else {
			gaps = r.partyGaps
		}
		if gaps == r.gapsJudged {
			return false
		}
	}
	th := r.m.opts.DegradedLossPercent
	if th <= 0 {
		return false
	}
	c, ok := r.lossLocked()
	if !ok {
		return false
	}
	if c.Expected == 0 || (!final && c.Expected < minDegradedPackets) {
		return false
	}
	if !final {
		r.gapsJudged = gaps
	}
	if float64(c.Lost)*100 > th*float64(c.Expected) {
		r.degraded = true
		r.m.log.Warn("recording degraded: packet loss past the threshold", "name", r.name, "target", r.target,
			"lost", c.Lost, "expected", c.Expected, "threshold_percent", th)
		return true
	}
	return false
}

// sessionDupsLocked is how many copies the channel's RTP session dropped
// since the recording started.
func (r *LiveRecording) sessionDupsLocked() uint64 {
	if r.dupsFrozen || r.meter == nil {
		return r.dupAcc
	}
	cur := r.ch.media.Stats().Duplicates
	if cur < r.dupLast { // a new source restarted the counter
		r.dupAcc += r.dupLast - r.dupBase
		r.dupBase = 0
	}
	r.dupLast = cur
	return r.dupAcc + cur - r.dupBase
}

// reportDegraded tells the recording's application (RecordingDegraded) and
// its starter (OnDegraded) that its loss passed the threshold.
func (r *LiveRecording) reportDegraded() {
	r.publish("RecordingDegraded")
	if r.opts.OnDegraded != nil {
		r.opts.OnDegraded(r.Quality())
	}
}

// Quality returns the recording's completeness so far.
func (r *LiveRecording) Quality() *meta.Quality {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.qualityLocked()
}

func (r *LiveRecording) qualityLocked() *meta.Quality {
	if r.startedAt.IsZero() {
		return nil // never started
	}
	q := &meta.Quality{RecordedMs: r.written * 1000 / audio.SampleRate, Degraded: r.degraded}
	if r.meter != nil {
		c := r.meter.Counts()
		q.PacketsExpected, q.PacketsReceived, q.PacketsLost = c.Expected, c.Received, c.Lost
		q.PacketsLate, q.PacketsDuplicated = c.Late, c.Duplicated+int64(r.sessionDupsLocked())
		q.JitterMs = float64(int64(c.JitterMs*1000+0.5)) / 1000
	}
	var partySilence int64
	if r.meter == nil && len(r.parties) > 0 {
		// A bridge recording: its parties' figures, summed, and each
		// party's (tapedeck's extension).
		c, lost, _ := r.countsLocked()
		q.PacketsExpected, q.PacketsReceived, q.PacketsLost = c.Expected, c.Received, c.Lost
		q.PacketsLate, q.PacketsDuplicated = c.Late, c.Duplicated
		q.JitterMs = float64(int64(c.JitterMs*1000+0.5)) / 1000
		partySilence = lost
		for _, p := range r.parties {
			pc, pl := p.counts()
			q.Parties = append(q.Parties, meta.PartyQuality{Channel: p.ch.id, CallSid: p.ch.callSid,
				PacketsExpected: pc.Expected, PacketsReceived: pc.Received, PacketsLost: pc.Lost,
				PacketsLate: pc.Late, PacketsDuplicated: pc.Duplicated,
				JitterMs: float64(int64(pc.JitterMs*1000+0.5)) / 1000, LossSilenceMs: int64(pl) * 20})
		}
	}
	silence := r.lossSilence
	if r.timeline != nil {
		silence += r.timeline.Stats().SilenceSamples
	}
	q.LossSilenceMs = silence*1000/audio.SampleRate + partySilence
	end := r.endedAt
	if end.IsZero() {
		end = time.Now()
	}
	q.CallMs = max(end.Sub(r.startedAt).Milliseconds(), 0)
	q.Paused = []meta.Paused{}
	if len(r.pauses) > 0 {
		q.Paused = append(q.Paused, r.pauses...)
		if r.pauseOpen {
			q.Paused[len(q.Paused)-1].LengthMs = max(end.Sub(r.pauseMono).Milliseconds(), 0)
		}
	}
	return q
}

// writeLocked is the timeline's output: the writer's queue, silence
// detection, counters.
func (r *LiveRecording) writeLocked(pcm []int16) {
	if r.writer == nil || r.cause != "" {
		return
	}
	if room := r.maxSamples() - r.written; int64(len(pcm)) > room {
		pcm = pcm[:max(room, 0)] // the cap is exact, whatever the packet size
	}
	if !r.q.pushAudio(pcm) {
		r.cause = r.overflowCause()
		return
	}
	r.hearLocked(pcm)
	if r.opts.MaxSilence > 0 {
		for off := 0; off+audio.FrameSamples <= len(pcm); off += audio.FrameSamples {
			r.vad.Frame(pcm[off : off+audio.FrameSamples])
		}
	}
	r.written += int64(len(pcm))
}

func (r *LiveRecording) checkLimitsLocked() (stop bool, fail string) {
	if r.cause != "" {
		return false, r.cause
	}
	if r.written >= r.maxSamples() {
		if r.stopReason == "" {
			r.stopReason = StopMaxDuration
			r.m.log.Info("recording reached its maximum length; stopping", "name", r.name, "target", r.target,
				"max_seconds", r.opts.MaxDuration.Seconds())
		}
		return true, ""
	}
	if r.hasMaxSilence && r.vad.SilentFor() >= r.opts.MaxSilence {
		if r.stopReason == "" {
			r.stopReason = StopMaxSilence
		}
		return true, ""
	}
	return false, ""
}

// mixFrom makes the bridge b's mix feed the channel recording r (its
// channel has joined b by third-party control): what the timeline holds
// is written first, then the mix takes over from the channel's audio.
func (r *LiveRecording) mixFrom(b *Bridge) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	if r.timeline != nil {
		r.timeline.Flush(r.emit)
	}
	if r.duplex != nil {
		r.duplex.Flush(r.duplexEmit)
	}
	r.mixIn.Store(b)
	r.mu.Unlock()
	if !b.attachRecording(r) {
		r.unmixLocked(b, false)
	}
}

// unmixLocked hands the channel recording back to its channel's audio when
// its channel leaves b (with b.mu held when bridgeLocked: b's list is
// changed in place).
func (r *LiveRecording) unmixLocked(b *Bridge, bridgeLocked bool) {
	if !r.mixIn.CompareAndSwap(b, nil) {
		return
	}
	if bridgeLocked {
		b.dropRecordingLocked(r)
	} else {
		b.detachRecording(r)
	}
	r.mu.Lock()
	if r.timeline != nil {
		// A fresh timeline: RTP timestamps start again from the channel.
		r.timeline = recorder.NewTimeline(audio.SampleRate, 60*time.Millisecond)
	}
	if r.duplex != nil {
		r.duplex.Reanchor()
	}
	r.mu.Unlock()
}

// Stop ends the recording and keeps the file.
func (r *LiveRecording) Stop() {
	r.flushMedia()
	r.finish(RecDone)
}

// Cancel ends the recording and deletes the file.
func (r *LiveRecording) Cancel() { r.finish(RecCanceled) }

// flushMedia hands the recording the channel's audio that arrived before
// now and is still queued for the batched reader, so that a control takes
// effect at the moment it was asked for. Called without r.mu.
func (r *LiveRecording) flushMedia() {
	if r.ch != nil {
		r.ch.media.Flush()
	}
}

// Pause suspends writing (paused time is skipped, not counted toward
// maxDurationSeconds) or resumes it.
func (r *LiveRecording) Pause(on bool) error {
	r.flushMedia()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != RecRecording && r.state != RecPaused {
		return errf(ErrInvalidState, "Recording not in session")
	}
	if on && r.state == RecRecording {
		r.timeline.Flush(r.emit)
		if r.duplex != nil {
			r.duplex.Flush(r.duplexEmit)
		}
		if r.meter != nil {
			r.meter.Break() // what is sent while paused is not expected
		}
		for _, p := range r.parties {
			p.meter.Break()
		}
		r.state = RecPaused
	} else if !on && r.state == RecPaused {
		// A fresh timeline: the paused interval is skipped, not filled.
		r.lossSilence += r.timeline.Stats().SilenceSamples
		r.timeline = recorder.NewTimeline(audio.SampleRate, 60*time.Millisecond)
		if r.duplex != nil {
			r.duplex.Reanchor() // from the next audio on
		}
		r.state = RecRecording
	}
	return nil
}

// Pause behaviours (meta.Paused.Behavior).
const (
	PauseSkip    = "skip"    // the paused time is left out of the file
	PauseSilence = "silence" // the paused time is written as silence
)

// PauseAs pauses (on) the recording with a behaviour (PauseSkip or
// PauseSilence) on behalf of by, and notes the paused interval; !on
// resumes it, whatever the behaviour of the pause (behavior is then
// ignored). Pausing a paused recording, or resuming a running one, does
// nothing.
func (r *LiveRecording) PauseAs(on bool, behavior, by string) error {
	r.mu.Lock()
	open, cur := r.pauseOpen, ""
	if open {
		cur = r.pauses[len(r.pauses)-1].Behavior
	}
	r.mu.Unlock()
	var err error
	switch {
	case on && open:
		return nil
	case on && behavior == PauseSilence:
		err = r.Mute(true)
	case on:
		behavior = PauseSkip
		err = r.Pause(true)
	case !open:
		return r.Pause(false) // nothing noted: as Pause (the catalog was not told either)
	case cur == PauseSilence:
		err = r.Mute(false)
	default:
		err = r.Pause(false)
	}
	if err != nil {
		return err
	}
	now := time.Now()
	r.mu.Lock()
	if on {
		r.pauses = append(r.pauses, meta.Paused{Start: now.UTC().Truncate(time.Millisecond), Behavior: behavior, By: by})
		r.pauseOpen, r.pauseMono = true, now
	} else if r.pauseOpen {
		r.pauses[len(r.pauses)-1].LengthMs = now.Sub(r.pauseMono).Milliseconds()
		r.pauseOpen = false
	}
	r.mu.Unlock()
	// Listed as paused (Twilio's status) while it is; the catalog keeps a
	// finished recording's final row whatever comes late here.
	r.catalogPaused(on)
	return nil
}

// PausedNow reports whether the recording is paused (either way).
func (r *LiveRecording) PausedNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pauseOpen || r.state == RecPaused
}

// Mute writes silence instead of the audio (or stops doing so).
func (r *LiveRecording) Mute(on bool) error {
	r.flushMedia()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != RecRecording && r.state != RecPaused {
		return errf(ErrInvalidState, "Recording not in session")
	}
	r.muted = on
	return nil
}

// finish ends the recording once with a final state.
func (r *LiveRecording) finish(state RecordingState) {
	r.mu.Lock()
	for r.opened != nil { // the file is being created: the outcome decides
		ch := r.opened
		r.mu.Unlock()
		<-ch
		r.mu.Lock()
	}
	if r.finished {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.finished = true
	wasQueued := r.state == RecQueued
	if wasQueued && state == RecDone {
		// Stopped before it began: as in Asterisk, a queued recording
		// that is stopped is canceled; no file, no catalog row.
		state = RecCanceled
	}
	r.state = state
	sentDetach := r.sentDetach
	r.mu.Unlock()
	if sentDetach != nil {
		sentDetach()
	}
	if r.ch != nil {
		r.ch.detach(r)
		if b := r.mixIn.Swap(nil); b != nil {
			b.detachRecording(r)
		}
	} else {
		r.br.detachRecording(r)
	}

	r.mu.Lock()
	var closeErr error
	stalled := false // the writer pool had not closed the file: its disk stalled
	w := r.writer
	r.endedAt = time.Now()
	r.dupAcc = r.sessionDupsLocked()
	r.dupsFrozen = true
	for _, p := range r.parties {
		p.freeze()
	}
	if r.pauseOpen {
		r.pauses[len(r.pauses)-1].LengthMs = r.endedAt.Sub(r.pauseMono).Milliseconds()
		r.pauseOpen = false
	}
	degradedAtEnd := w != nil && r.checkDegradedLocked(true)
	if w != nil {
		if r.timeline != nil && r.cause == "" && r.ch != nil {
			r.timeline.Flush(r.emit)
			if r.duplex != nil && r.mixIn.Load() == nil {
				r.duplex.Flush(r.duplexEmit)
			}
			if st := r.timeline.Stats(); st.Clamped > 0 {
				r.m.log.Warn("recording: RTP timestamps ran ahead of the clock; gaps cut to the time that passed",
					"name", r.name, "target", r.target, "gaps", st.Clamped)
			}
		}
	}
	r.mu.Unlock()
	if w != nil {
		// The writer pool writes what is queued and closes the file;
		// a disk that stalls fails this recording, and the hangup or stop
		// waits no longer than writerStallTimeout for it.
		r.q.close()
		t := time.NewTimer(writerStallTimeout)
		select {
		case closeErr = <-r.q.closed:
		case <-t.C:
			closeErr = fmt.Errorf("%w: the disk did not complete a write within %v", errDiskStalled, writerStallTimeout)
			stalled = true
			r.m.log.Error("recording: the disk stalled; the recording is failed and its file is closed when the write returns",
				"name", r.name, "path", r.path)
		}
		t.Stop()
	}
	r.mu.Lock()
	r.stalled = stalled
	if stalled {
		// The file holds the audio of the writes that returned; the one
		// in progress may never land: that is the recording's length.
		r.stored, r.storedSet = recorder.StoredSoFar(w), true
	}
	if r.cause != "" || (closeErr != nil && state != RecCanceled) {
		if r.cause == "" {
			r.cause = failureCause(closeErr)
		}
		r.state = RecFailed
	}
	if r.state == RecFailed && r.storedSet {
		// The audio in the file, not the audio queued: what the writer
		// held or had queued when it failed is lost.
		ch := int64(1)
		if r.stereo {
			ch = 2
		}
		r.written = min(r.written, r.stored/ch)
	}
	trim := r.state == RecDone && w != nil && r.opts.TrimSilence && r.format.Ext == "wav"
	r.silent = r.opts.AbsentSilent && !r.heard && r.written > 0
	r.mu.Unlock()
	if trim {
		// Twilio's Trim=trim-silence: the leading and trailing silence go
		// once the file is closed; the length is what is left.
		if kept, err := recorder.TrimWAV(r.path, recorder.TrimThreshold); err != nil {
			r.logger().Warn("recording: silence not trimmed", "name", r.name, "err", err)
		} else {
			r.mu.Lock()
			r.written = kept
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	r.endReason = r.endReasonLocked()
	final, cause, written := r.state, r.cause, r.written
	r.mu.Unlock()
	if state == RecCanceled && !wasQueued {
		// (A queued recording created nothing: the file at its path, if
		// any, is an earlier recording's.)
		os.Remove(r.path)
	}
	r.m.recMu.Lock()
	if r.m.live[r.name] == r {
		delete(r.m.live, r.name)
		// Not free until the catalog's end below is done: a new
		// recording of the name would share the row that end finishes.
		if r.m.finishing == nil {
			r.m.finishing = map[string]*LiveRecording{}
		}
		r.m.finishing[r.name] = r
	}
	r.m.recMu.Unlock()
	if degradedAtEnd {
		// Before the final row: a status callback of the degradation
		// (OnDegraded) is queued with the row still live, before the
		// terminal one that the final row's write queues.
		r.reportDegraded()
	}
	catalogEnd := func() {
		defer r.m.endFinishing(r)
		if !wasQueued || final != RecCanceled {
			r.catalogFinished(final)
			if stalled {
				r.awaitStalledClose(w)
			}
		} else {
			r.catalogQueuedEnd()
		}
		r.releaseName()
	}
	r.catalogEndBounded(catalogEnd)
	recordingEnded(final, cause)
	if !wasQueued {
		secs := round3(float64(written) / audio.SampleRate)
		switch {
		case final == RecDone && written == 0:
			r.logger().Warn("recording finished without audio: no RTP reached it", "name", r.name, "path", r.path, "state", final, "duration_s", secs)
		case final != RecFailed:
			r.logger().Info("recording finished", "name", r.name, "path", r.path, "state", final, "duration_s", secs)
		}
	}
	switch {
	case wasQueued && final == RecCanceled:
		// Never started: nothing to report but the end.
		r.publish("RecordingFinished")
	case final == RecFailed:
		r.logger().Warn("recording failed", "name", r.name, "cause", r.cause)
		r.publish("RecordingFailed")
	default:
		r.publish("RecordingFinished")
	}
	r.doneMu.Lock()
	fns := r.onDone
	r.onDone, r.ended = nil, true
	r.doneMu.Unlock()
	close(r.done)
	for _, f := range fns {
		f()
	}
}

// afterDone runs f once the recording is done (at once when it is), on the
// goroutine that ends it: f must not wait for anything.
func (r *LiveRecording) afterDone(f func()) {
	r.doneMu.Lock()
	if r.ended {
		r.doneMu.Unlock()
		f()
		return
	}
	r.onDone = append(r.onDone, f)
	r.doneMu.Unlock()
}

// fail ends the recording with a cause (RecordingFailed); the call goes on.
// logger is the target channel's logger (its call's ids) or the manager's.
func (r *LiveRecording) logger() *slog.Logger {
	if r.ch != nil {
		return r.ch.log
	}
	return r.m.log.With("bridge", r.target)
}

func (r *LiveRecording) fail(cause string) {
	r.mu.Lock()
	if r.cause == "" {
		r.cause = cause
	}
	r.mu.Unlock()
	r.finish(RecFailed)
}

// liveRecording finds a live recording by name.
func (m *Manager) liveRecording(name string) (*LiveRecording, error) {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	r := m.live[name]
	if r == nil {
		return nil, errf(ErrRecordingNotFound, "Recording not found")
	}
	return r, nil
}

// storedFormats lists the formats in which a recording base path exists.
func (m *Manager) storedFormats(base string) []recorder.Format {
	var out []recorder.Format
	for _, f := range recorder.Formats() {
		if _, err := os.Stat(base + "." + f.Ext); err == nil {
			out = append(out, f)
		}
	}
	return out
}
