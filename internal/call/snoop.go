package call

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/media/mix"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// A snoop channel (ARI POST /channels/{id}/snoop, Asterisk's
// res_stasis_snoop) is a channel whose received audio is another
// channel's: with spy "in" what the snooped party says (the audio the
// channel receives), with "out" what it hears (the audio sent to it), with
// "both" the two mixed. What is sent to the snoop channel (a playback, a
// bridge's mix) is whispered: with whisper "out" or "both" the snooped
// party hears it, with "in" or "both" it is mixed into what the party says
// (so a bridged peer and the channel's recordings hear it). It has no SIP
// side and no sockets: it can be recorded, bridged, played to and hung up
// like any other channel, and it is hung up when the snooped channel goes.
//
// The snooped channel's audio reaches the snoop channel through the tap
// chain (a StageSink tap for "in", a sent tap for "out"), so a one-way
// snoop costs what a second recording of the channel costs: one copy of
// each frame into the snoop's own taps. "both" is a clocked mix, as
// Asterisk's snoop reads its audiohook on a 20 ms timer: each direction
// goes into a play-out buffer of a two-party mixer (the bridges' jitter
// buffer), and every tick of the media clock emits one frame of their sum,
// whatever the two directions' arrival pattern.

// SnoopOptions are the parameters of snoop and snoopWithId.
type SnoopOptions struct {
	Spy, Whisper string // none, both, out, in
	App          string
	AppArgs      string
	SnoopID      ChannelID // the snoop channel's id; generated when empty
}

func validDirection(d string) bool {
	switch d {
	case "none", "both", "out", "in":
		return true
	}
	return false
}

// snoopMedia is the snoop channel's Media: audio comes from the target's
// taps, audio written goes to the target (whisper).
type snoopMedia struct {
	target  *Channel
	ch      *Channel // the snoop channel, set before any tap is attached
	spy     string
	whisper string
	ssrc    uint32

	mu    sync.Mutex // serialises frames into the snoop's taps (in and out run on different goroutines)
	ts    uint32
	seq   uint16 // one per frame, for the recordings' packet counters
	at    time.Time
	frame Frame
	// spy both: the two directions' play-out buffers and their clock.
	mixer     *mix.Mixer
	pIn, pOut *mix.Participant
	outTS     uint32
	tick      *rtp.Tick
	tickStop  chan struct{}
	wmu       sync.Mutex // serialises the snoop's senders (ops, a bridge's clock or its other party)
	whisp     []int16    // whisper decode buffer (guarded by wmu)
	whisperIn *frameFIFO // whisper in: frames mixed into the target's input
	detach    []func()
	closed    bool
}

// inTap sees the target's received audio.
type snoopInTap struct {
	NoOpTap
	s *snoopMedia
}

func (t snoopInTap) Audio(f *Frame) {
	if t.s.pIn != nil {
		t.s.pIn.Push(f.SSRC, f.Timestamp, f.PCM)
		return
	}
	t.s.received(f.PCM, f.At)
}

// outTap sees the audio sent to the target.
type snoopOutTap struct {
	NoOpTap
	s *snoopMedia
}

func (t snoopOutTap) Audio(f *Frame) { t.s.sent(f.PCM, f.At) }

// whisperTap mixes what is whispered "in" into the target's received
// audio, before its recordings and its bridge hear it.
type whisperTap struct {
	NoOpTap
	s   *snoopMedia
	buf [160]int16
}

func (t *whisperTap) Audio(f *Frame) {
	if t.s.whisperIn.source(t.buf[:]) == mix.Idle {
		return
	}
	audio.AddInto(f.PCM, t.buf[:])
}

func (s *snoopMedia) received(pcm []int16, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.emitLocked(pcm, at)
}

func (s *snoopMedia) sent(pcm []int16, at time.Time) {
	if s.pOut != nil {
		s.mu.Lock()
		ts := s.outTS
		s.outTS += uint32(len(pcm))
		s.mu.Unlock()
		s.pOut.Push(0x5e0000ff, ts, pcm)
		return
	}
	s.received(pcm, at)
}

// onTick is spy both's clock: one frame of the two directions' mix, when
// either has audio.
func (s *snoopMedia) onTick() {
	s.mixer.TickRecord(nil, func(mixed []int16, parts []mix.Frame) {
		active := false
		for _, p := range parts {
			active = active || p.Active
		}
		if !active {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			s.emitLocked(mixed, time.Now())
		}
	})
	s.mixer.Trim() // no catching up here: at most 120 ms of each direction waits
}

// startClock starts spy both's mixer on the media clock.
func (s *snoopMedia) startClock(m *Manager) {
	s.tickStop = make(chan struct{})
	if p := m.opts.Poller; p != nil {
		s.tick = p.AddTick(20*time.Millisecond, s.onTick)
		return
	}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.tickStop:
				return
			case <-t.C:
				s.onTick()
			}
		}
	}()
}

// emitLocked hands one frame to the snoop channel's taps, on the snoop's
// own timeline (its SSRC, timestamps counted in samples).
func (s *snoopMedia) emitLocked(pcm []int16, at time.Time) {
	taps := s.ch.tapList()
	s.ts += uint32(len(pcm))
	s.seq++
	if len(taps) == 0 {
		return
	}
	if s.ch.muteIn.Load() {
		return
	}
	s.at = at
	f := &s.frame
	*f = Frame{SSRC: s.ssrc, Timestamp: s.ts, Seq: s.seq, PCM: pcm, At: at}
	for _, e := range taps {
		e.tap.Audio(f)
	}
}

// Update implements Media (no remote).
func (s *snoopMedia) Update(*net.UDPAddr, uint8, uint8) {}

// WriteAudio implements Media: whisper what is sent to the snoop channel
// (µ-law, the snoop's codec) to the snooped party.
func (s *snoopMedia) WriteAudio(payload []byte, _ uint32) error {
	if s.whisper == "none" {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if cap(s.whisp) < len(payload) {
		s.whisp = make([]int16, len(payload))
	}
	pcm := s.whisp[:len(payload)]
	codec.DecodeMulaw(pcm, payload)
	if s.whisper == "in" || s.whisper == "both" {
		s.whisperIn.push(pcm)
	}
	if s.whisper == "out" || s.whisper == "both" {
		s.target.writeFrame(pcm)
	}
	return nil
}

// SendDigit implements Media: a snoop channel sends no digits.
func (s *snoopMedia) SendDigit(rune, time.Duration) error { return nil }

// Arrival implements Media.
func (s *snoopMedia) Arrival() time.Time { return s.at }

// Flush implements Media: frames are handed over as they come.
func (s *snoopMedia) Flush() {}

// SetOwned implements Media.
func (s *snoopMedia) SetOwned(bool) {}

// Stats implements Media.
func (s *snoopMedia) Stats() rtp.Stats { return rtp.Stats{} }

// LocalAddr implements Media.
func (s *snoopMedia) LocalAddr() *net.UDPAddr { return nil }

// Remote implements Media.
func (s *snoopMedia) Remote() *net.UDPAddr { return nil }

// Close implements Media: the snoop stops listening to its target.
func (s *snoopMedia) Close() error {
	s.mu.Lock()
	detach := s.detach
	wasClosed := s.closed
	s.detach, s.closed = nil, true
	s.mu.Unlock()
	for _, d := range detach {
		d()
	}
	if !wasClosed {
		if s.tick != nil {
			s.tick.Remove()
		}
		if s.tickStop != nil {
			close(s.tickStop)
		}
	}
	return nil
}

// Snoop makes a snoop channel on a channel and puts it into o.App.
func (m *Manager) Snoop(id ChannelID, o SnoopOptions) (ChannelJSON, error) {
	if o.Spy == "" {
		o.Spy = "none"
	}
	if o.Whisper == "" {
		o.Whisper = "none"
	}
	if !validDirection(o.Spy) || !validDirection(o.Whisper) {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Invalid direction specified")
	}
	if o.Spy == "none" && o.Whisper == "none" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Sppying or whispering must be specified")
	}
	if o.App == "" {
		return ChannelJSON{}, errf(ErrInvalidArgument, "Application name is required")
	}
	target, err := m.channel(string(id))
	if err != nil {
		return ChannelJSON{}, err
	}
	if o.SnoopID != "" {
		if _, err := m.channel(string(o.SnoopID)); err == nil {
			return ChannelJSON{}, errf(ErrConflict, "Channel with id %s already exists", o.SnoopID)
		}
	}
	sm := &snoopMedia{target: target, spy: o.Spy, whisper: o.Whisper, ssrc: uint32(m.seq.Load()) | 0x5e000000, whisperIn: newFrameFIFO()}
	if o.Spy == "both" {
		sm.mixer = mix.New()
		sm.pIn, sm.pOut = sm.mixer.Add("in"), sm.mixer.Add("out")
	}
	target.mu.Lock()
	caller, dialplan := target.caller, target.dialplan
	target.mu.Unlock()
	ch, err := m.newChannel(channelSpec{
		id:         string(o.SnoopID),
		callSid:    target.callSid,
		accountSid: target.accountSid,
		user:       "snoop",
		name:       fmt.Sprintf("Snoop/%s-%08x", target.id, m.seq.Load()+1),
		caller:     caller,
		dialplan:   dialplan,
		state:      StateUp,
		app:        o.App,
		media:      sm,
	}, rtp.Config{})
	if err != nil {
		return ChannelJSON{}, err
	}
	sm.ch = ch
	var detach []func()
	ok := true
	if o.Spy == "in" || o.Spy == "both" {
		d, attached := target.AttachTap(snoopInTap{s: sm}, StageSink)
		detach, ok = append(detach, d), ok && attached
	}
	if o.Spy == "out" || o.Spy == "both" {
		d, attached := target.AttachSentTap(snoopOutTap{s: sm})
		detach, ok = append(detach, d), ok && attached
	}
	if o.Whisper == "in" || o.Whisper == "both" {
		d, attached := target.AttachTap(&whisperTap{s: sm}, StageFilter)
		detach, ok = append(detach, d), ok && attached
	}
	sm.mu.Lock()
	sm.detach = detach
	sm.mu.Unlock()
	if sm.mixer != nil {
		sm.startClock(m)
	}
	if !ok {
		ch.hangup(CauseNormalClearing, true)
		return ChannelJSON{}, errChannelNotFound
	}
	go func() {
		select {
		case <-target.done:
			ch.hangup(CauseNormalClearing, true)
		case <-ch.done:
		}
	}()
	ch.enterStasis(o.App, splitArgs(o.AppArgs))
	return ch.JSON(), nil
}
