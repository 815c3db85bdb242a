package call

import (
	"slices"
	"sync"
	"time"
)

// A channel's received audio and digits go through a chain of taps, in the
// manner of pion's interceptors: recordings, the bridge participant, and
// whatever comes next (a feature-code detector, a digit gatherer) attach to
// the chain instead of being called by hand. The media path decodes each
// packet once and hands the frame to every tap in order; a digit goes
// through the taps until one consumes it, and only an unconsumed digit
// reaches the application (ChannelDtmfReceived) and, through the bridge
// participant's tap, the bridged parties.
//
// The chain is copy on write: the media path reads it with one atomic load
// and no lock; attaching and detaching take the channel's mu (after a
// bridge's mu, when a bridge adds or removes its participant).

// Frame is one decoded audio frame received (or, for a sent tap, sent) on
// a channel. Its PCM (8 kHz, 16-bit) belongs to the media path: a tap reads
// or copies it during Audio and must neither change nor keep it.
type Frame struct {
	SSRC      uint32
	Timestamp uint32 // RTP timestamp
	Seq       uint16 // RTP sequence number
	PCM       []int16
	// At is when the packet arrived (the kernel's receive time): batched
	// reads do not bunch packets up.
	At time.Time
}

// Digit is one RFC 4733 DTMF event received on a channel: once when it
// starts (End false) and once when it ends (End true, with its duration).
type Digit struct {
	Digit      rune
	DurationMs int
	End        bool
}

// Tap listens to a channel's received audio and digits. Its methods run on
// the channel's media path (the RTP reader): they must not block, do I/O or
// allocate per frame; hand work to a goroutine or a queue.
type Tap interface {
	// Audio sees each received audio frame (silence while the channel's
	// input is muted).
	Audio(f *Frame)
	// Digit sees a digit event and reports whether it consumes it: a
	// consumed digit reaches no later tap, not the application and not a
	// bridged party.
	Digit(d Digit) (consumed bool)
}

// NoOpTap is a Tap that does nothing: embed it to implement only one method.
type NoOpTap struct{}

// Audio implements Tap.
func (NoOpTap) Audio(*Frame) {}

// Digit implements Tap.
func (NoOpTap) Digit(Digit) bool { return false }

// AudioFunc adapts a function to a Tap that sees audio only.
type AudioFunc func(f *Frame)

// Audio implements Tap.
func (fn AudioFunc) Audio(f *Frame) { fn(f) }

// Digit implements Tap (never consumes).
func (AudioFunc) Digit(Digit) bool { return false }

// DigitFunc adapts a function to a Tap that sees digits only.
type DigitFunc func(d Digit) bool

// Audio implements Tap.
func (DigitFunc) Audio(*Frame) {}

// Digit implements Tap.
func (fn DigitFunc) Digit(d Digit) bool { return fn(d) }

// TapStage orders taps: every tap of an earlier stage sees a frame or a
// digit before those of a later one; within a stage, taps run in the order
// they were attached.
type TapStage int

const (
	// StageControl is for taps that act on digits (feature codes, a digit
	// gatherer): they run first, so a digit they consume reaches neither
	// the recordings nor the bridge.
	StageControl TapStage = iota
	// StageFilter is for taps that change the audio before anyone
	// consumes it (a snoop's whisper into the channel's input): unlike
	// other taps they may change Frame.PCM in place.
	StageFilter
	// StageSink is for consumers of audio: recordings, the bridge
	// participant.
	StageSink
)

type tapEntry struct {
	tap   Tap
	stage TapStage
}

// AttachTap adds a tap to the channel's chain and returns the function that
// removes it (idempotent). It reports false, attaching nothing, once the
// channel is hanging up. The chain is copy on write: the media path reads
// it without a lock.
func (ch *Channel) AttachTap(t Tap, stage TapStage) (detach func(), ok bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.hangingUp {
		return func() {}, false
	}
	e := ch.addTapLocked(t, stage)
	return func() { ch.removeTap(e) }, true
}

// addTapLocked inserts a tap after the others of its stage; the entry
// identifies it for removeTap (taps themselves need not be comparable).
func (ch *Channel) addTapLocked(t Tap, stage TapStage) *tapEntry {
	e := &tapEntry{tap: t, stage: stage}
	var list []*tapEntry
	if old := ch.taps.Load(); old != nil {
		list = append(list, *old...)
	}
	i := len(list)
	for i > 0 && list[i-1].stage > stage {
		i--
	}
	list = slices.Insert(list, i, e)
	ch.setTapsLocked(list)
	return e
}

// setTapsLocked publishes the chain (ch.mu held), and with it solo: the
// recording that is the chain's only tap (the common case, which the media
// path takes without reading the chain: OnAudio), else nil; and part, the
// same for a bridge participant's tap (a bridged channel). Both are
// cleared before the chain is stored and set after it, so a packet read
// with one set is one that the chain read at that moment would also have
// handed only to that tap.
func (ch *Channel) setTapsLocked(list []*tapEntry) {
	ch.solo.Store(nil)
	ch.part.Store(nil)
	ch.taps.Store(&list)
	if len(list) == 1 {
		switch t := list[0].tap.(type) {
		case *recordingTap:
			ch.solo.Store(t.r)
		case *participantTap:
			ch.part.Store(t)
		}
	}
	ch.updateRelaxLocked()
}

func (ch *Channel) removeTap(t *tapEntry) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	old := ch.taps.Load()
	if old == nil {
		return
	}
	list := make([]*tapEntry, 0, len(*old))
	for _, e := range *old {
		if e != t {
			list = append(list, e)
		}
	}
	ch.setTapsLocked(list)
}

// tapList is the current chain (nil when empty).
func (ch *Channel) tapList() []*tapEntry {
	if p := ch.taps.Load(); p != nil {
		return *p
	}
	return nil
}

// digitTaps runs a digit through the chain; it reports whether a tap
// consumed it.
func (ch *Channel) digitTaps(d Digit) bool {
	for _, e := range ch.tapList() {
		if e.tap.Digit(d) {
			return true
		}
	}
	return false
}

// AttachSentTap adds a tap on the audio the channel sends (playbacks, a
// bridge's mix, silence, the beep): its Audio sees each frame, decoded,
// just before it is encoded and sent (nothing while the channel's output
// is muted); Frame.SSRC and Timestamp are zero and At is the Manager's
// clock. Its Digit is not called. Sent audio comes from more than one
// goroutine (a playback, a bridge's clock, the silence generator), so a
// sent tap guards its own state. It returns the function that removes
// it; false once the channel is hanging up.
func (ch *Channel) AttachSentTap(t Tap) (detach func(), ok bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.hangingUp {
		return func() {}, false
	}
	e := &tapEntry{tap: t, stage: StageSink}
	var list []*tapEntry
	if old := ch.sentTaps.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, e)
	ch.sentTaps.Store(&list)
	return func() {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		old := *ch.sentTaps.Load()
		list := make([]*tapEntry, 0, len(old))
		for _, x := range old {
			if x != e {
				list = append(list, x)
			}
		}
		ch.sentTaps.Store(&list)
	}, true
}

// sentFrames recycles the Frames handed to sent taps: senders run on
// several goroutines, and a Frame passed to an interface would otherwise
// be allocated per frame.
var sentFrames = sync.Pool{New: func() any { return new(Frame) }}

// tapSent hands a frame about to be sent to the sent taps.
func (ch *Channel) tapSent(pcm []int16) {
	p := ch.sentTaps.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	f := sentFrames.Get().(*Frame)
	*f = Frame{PCM: pcm, At: ch.m.now()}
	for _, e := range *p {
		e.tap.Audio(f)
	}
	f.PCM = nil
	sentFrames.Put(f)
}

// recordingTap attaches a channel recording to the chain: it gets the
// audio, and digits end it when they match its terminateOn.
type recordingTap struct{ r *LiveRecording }

func (t *recordingTap) Audio(f *Frame) { t.r.push(f.SSRC, f.Seq, f.Timestamp, f.PCM, f.At) }

func (t *recordingTap) Digit(d Digit) bool {
	if !d.End {
		return false
	}
	term := t.r.opts.TerminateOn
	if term == "any" || (term == "*" && d.Digit == '*') || (term == "#" && d.Digit == '#') {
		go t.r.finish(RecDone)
	}
	return false
}
