package call

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// Stream transports of external media (AudioSocket over TCP, Asterisk's
// chan_websocket): the channel's audio leaves as raw frames in the
// requested format (slin at its rate, ulaw, alaw) and what the far end
// sends comes back at whatever pace it is sent, is queued, and enters the
// channel one 20 ms frame per tick of the shared media clock, as
// chan_websocket does for its apps (AudioSocket apps are expected to pace
// themselves; pacing here too does them no harm). In chan_websocket's
// passthrough mode (p) each message is one frame of its own length, not
// cut or padded to 20 ms, and the clock plays one message per tick.

// streamFormat is an external media format of the stream transports.
type streamFormat struct {
	name string
	rate int    // Hz
	enc  string // slin (16-bit little-endian), ulaw, alaw
	kind byte   // AudioSocket message kind for audio in this format
}

// frameBytes is the size of 20 ms of audio (chan_websocket's optimal frame
// size).
func (f streamFormat) frameBytes() int {
	if f.enc == "slin" {
		return f.rate / 50 * 2
	}
	return f.rate / 50
}

// streamFormats are Asterisk's names of the formats a stream transport
// carries; slin rates other than 8 kHz are resampled.
var streamFormats = map[string]streamFormat{
	"ulaw":    {"ulaw", 8000, "ulaw", 0x10},
	"alaw":    {"alaw", 8000, "alaw", 0x10},
	"slin":    {"slin", 8000, "slin", 0x10},
	"slin12":  {"slin12", 12000, "slin", 0x11},
	"slin16":  {"slin16", 16000, "slin", 0x12},
	"slin24":  {"slin24", 24000, "slin", 0x13},
	"slin32":  {"slin32", 32000, "slin", 0x14},
	"slin44":  {"slin44", 44100, "slin", 0x15},
	"slin48":  {"slin48", 48000, "slin", 0x16},
	"slin96":  {"slin96", 96000, "slin", 0x17},
	"slin192": {"slin192", 192000, "slin", 0x18},
}

// slinRateOfKind is the rate of an AudioSocket audio kind.
func slinRateOfKind(kind byte) (int, bool) {
	for _, f := range streamFormats {
		if f.enc == "slin" && f.kind == kind {
			return f.rate, true
		}
	}
	return 0, false
}

// streamTransport is the far end of a stream: frames out, and a way to
// close. What comes in is handed to streamMedia.receive by the
// transport's own reader. writeAudio never blocks (it runs on the
// sender's goroutine: a bridge's clock, the other party's media path):
// what the socket does not take at once is queued and written by the
// transport on its own, and past about a second of backlog frames drop
// (errStreamFull).
type streamTransport interface {
	writeAudio(frame []byte) error
	writeDigit(d rune) error
	close()
}

// maxStreamQueue bounds what the far end may send ahead: about 20 s of
// audio (chan_websocket's 1000 frames).
const maxStreamQueue = 1000 * audio.FrameSamples

// Passthrough's queue limits, in messages: chan_websocket's
// QUEUE_LENGTH_MAX, and its XOFF and XON levels.
const (
	maxPassFrames  = 1000
	passXOffFrames = 900
	passXOnFrames  = 800
)

// streamMedia is the Media of a stream external media channel.
type streamMedia struct {
	m    *Manager
	ch   *Channel // set before the transport starts
	f    streamFormat
	ssrc uint32

	tr     atomic.Pointer[streamTransportBox] // nil until connected (websocket server)
	done   chan struct{}
	closed sync.Once
	tick   *rtp.Tick

	// The far end's audio (guarded by mu).
	mu      sync.Mutex
	queue   []int16 // 8 kHz, waiting for the clock
	down    *audio.Resampler
	odd     []byte // a half sample left over from a message
	paused  bool
	xoff    bool
	onEvent func(ev, id string) // chan_websocket notifications (XON/XOFF, drained, marks with their id)
	drained bool                // REPORT_QUEUE_DRAINED pending
	marks   []streamMark
	pcmIn   []int16
	// passthrough (chan_websocket's p): each message is one frame, kept
	// whole in frames until the clock plays it; spare recycles the
	// buffers of the frames played.
	passthrough bool
	frames      [][]int16
	spare       [][]int16

	// The player's side (guarded by play: the clock's tick and the
	// transport's reader both hand frames over).
	play   sync.Mutex
	tokens float64   // frames that may be played now
	last   time.Time // of the last refill
	epoch  time.Time // of the timestamps
	ts     uint32
	seq    uint16 // for the recordings' packet counters
	at     time.Time
	frame  Frame
	pcm    []int16
	pass   []int16 // the passthrough frame being played

	// The channel's side: wmu serialises its senders (a bridge's clock, a
	// directly forwarding bridge's other party, ops), and guards these.
	wmu      sync.Mutex
	up       *audio.Resampler
	decode   []int16
	upBuf    []int16
	frameBuf []byte // the frame being written

	// queued is len(queue), for the clock's tick to skip an idle stream
	// without a lock.
	queued atomic.Int64

	sent, received, dropped atomic.Uint64
}

// streamMark is a notification to send once the audio queued before it
// has been played (STOP_MEDIA_BUFFERING, MARK_MEDIA).
type streamMark struct {
	left  int // samples still ahead of it
	event string
	id    string
}

type streamTransportBox struct {
	t streamTransport
}

func newStreamMedia(m *Manager, f streamFormat, ssrc uint32) *streamMedia {
	s := &streamMedia{m: m, f: f, ssrc: ssrc, done: make(chan struct{}), pcm: make([]int16, audio.FrameSamples)}
	if f.rate != audio.SampleRate {
		s.up = audio.NewResampler(audio.SampleRate, f.rate)
	}
	return s
}

// start begins the clock once the channel exists.
func (s *streamMedia) start(ch *Channel) {
	s.ch = ch
	if p := s.m.opts.Poller; p != nil {
		s.tick = p.AddTick(audio.FrameDuration, s.onTick)
		return
	}
	go func() {
		t := time.NewTicker(audio.FrameDuration)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.onTick()
			}
		}
	}()
}

// connect hands the stream its transport (at creation, or when the
// far end connects to a websocket server channel).
func (s *streamMedia) connect(t streamTransport) {
	s.tr.Store(&streamTransportBox{t: t})
}

func (s *streamMedia) transport() streamTransport {
	if b := s.tr.Load(); b != nil {
		return b.t
	}
	return nil
}

// WriteAudio implements Media: one frame the channel sends (G.711 in the
// channel's codec) goes to the far end in the stream's format, written on
// the sender's goroutine: no hand-off to a goroutine (the transport
// queues what its socket does not take).
func (s *streamMedia) WriteAudio(payload []byte, _ uint32) error {
	box := s.tr.Load()
	if box == nil {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.frameBuf = s.appendFrame(s.frameBuf[:0], payload)
	switch err := box.t.writeAudio(s.frameBuf); err {
	case nil:
		s.sent.Add(1)
	case errStreamFull:
		s.dropped.Add(1)
	default:
		s.dropped.Add(1)
		s.ch.log.Debug("external media: write failed", "err", err)
	}
	return nil
}

// appendFrame appends one frame the channel sends (G.711 in the channel's
// codec) in the stream's format: the bytes as they are when the two
// match, else decoded and encoded (and resampled for slin above 8 kHz).
func (s *streamMedia) appendFrame(b, payload []byte) []byte {
	if s.f.enc == "ulaw" && !s.ch.outPCMA.Load() || s.f.enc == "alaw" && s.ch.outPCMA.Load() {
		return append(b, payload...)
	}
	if cap(s.decode) < len(payload) {
		s.decode = make([]int16, len(payload))
	}
	pcm := s.decode[:len(payload)]
	if s.ch.outPCMA.Load() {
		codec.DecodeAlaw(pcm, payload)
	} else {
		codec.DecodeMulaw(pcm, payload)
	}
	return s.encode(b, pcm)
}

// encode appends 8 kHz PCM in the stream's format.
func (s *streamMedia) encode(b []byte, pcm []int16) []byte {
	switch s.f.enc {
	case "ulaw":
		n := len(b)
		b = append(b, make([]byte, len(pcm))...)
		codec.EncodeMulaw(b[n:], pcm)
		return b
	case "alaw":
		n := len(b)
		b = append(b, make([]byte, len(pcm))...)
		codec.EncodeAlaw(b[n:], pcm)
		return b
	}
	if s.up != nil {
		s.upBuf = s.up.Process(s.upBuf[:0], pcm)
		pcm = s.upBuf
	}
	for _, v := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// receive queues audio from the far end: data in enc at rate (AudioSocket
// names the rate of each message; chan_websocket's is the channel's). A
// frame is handed to the channel at once when none was in the last 20 ms
// (a far end that paces itself adds no delay); the clock's ticks play the
// rest of a burst.
func (s *streamMedia) receive(data []byte, enc string, rate int) {
	s.enqueue(data, enc, rate)
	s.playFrame()
}

func (s *streamMedia) enqueue(data []byte, enc string, rate int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received.Add(1)
	pcm := s.pcmIn[:0]
	switch enc {
	case "ulaw", "alaw":
		if cap(pcm) < len(data) {
			pcm = make([]int16, len(data))
		}
		pcm = pcm[:len(data)]
		if enc == "ulaw" {
			codec.DecodeMulaw(pcm, data)
		} else {
			codec.DecodeAlaw(pcm, data)
		}
	default:
		if len(s.odd) > 0 {
			if len(data) == 0 {
				return
			}
			pcm = append(pcm, int16(binary.LittleEndian.Uint16([]byte{s.odd[0], data[0]})))
			s.odd = s.odd[:0]
			data = data[1:]
		}
		for len(data) >= 2 {
			pcm = append(pcm, int16(binary.LittleEndian.Uint16(data)))
			data = data[2:]
		}
		if len(data) == 1 {
			s.odd = append(s.odd[:0], data[0])
		}
		if rate != audio.SampleRate {
			if s.down == nil || func() bool { in, _ := s.down.Rates(); return in != rate }() {
				s.down = audio.NewResampler(rate, audio.SampleRate)
			}
			n := len(pcm)
			pcm = s.down.Process(pcm, pcm)
			pcm = pcm[n:]
		}
	}
	s.pcmIn = pcm[:0]
	if s.passthrough {
		s.enqueueWhole(pcm)
		return
	}
	room := maxStreamQueue - len(s.queue)
	if len(pcm) > room {
		s.dropped.Add(1)
		pcm = pcm[:max(room, 0)]
	}
	s.queue = append(s.queue, pcm...)
	s.queued.Store(int64(len(s.queue)))
	if !s.xoff && len(s.queue) >= maxStreamQueue*9/10 {
		s.xoff = true
		s.notify("MEDIA_XOFF", "")
	}
}

// enqueueWhole queues one passthrough message as a frame of its own (mu
// held). As chan_websocket, a message that finds the queue full is
// dropped; the far end is told XOFF at 900 queued and XON below 800.
func (s *streamMedia) enqueueWhole(pcm []int16) {
	s.odd = s.odd[:0] // a message's trailing half sample is not carried over
	if len(pcm) == 0 {
		return
	}
	if len(s.frames) >= maxPassFrames {
		s.dropped.Add(1)
		return
	}
	var b []int16
	if n := len(s.spare); n > 0 {
		b, s.spare = s.spare[n-1], s.spare[:n-1]
	}
	s.frames = append(s.frames, append(b[:0], pcm...))
	s.queued.Store(int64(len(s.frames)))
	if !s.xoff && len(s.frames) >= passXOffFrames {
		s.xoff = true
		s.notify("MEDIA_XOFF", "")
	}
}

// notify sends a chan_websocket notification (mu held).
func (s *streamMedia) notify(ev, id string) {
	if s.onEvent != nil {
		s.onEvent(ev, id)
	}
}

// onTick is the clock: it plays a queued frame when one is due. A stream
// whose far end sends nothing costs the clock one atomic load (skipping
// the tick changes nothing: the token bucket refills from the time of its
// last play).
func (s *streamMedia) onTick() {
	if s.queued.Load() == 0 {
		return
	}
	s.playFrame()
}

// playBurst is how many frames ahead of real time the far end's audio
// may be played (60 ms, within the bridges' 120 ms jitter buffers).
const playBurst = 3

// playFrame hands one 20 ms frame of the far end's audio to the channel,
// at most one per 20 ms.
func (s *streamMedia) playFrame() {
	select {
	case <-s.done:
		return
	default:
	}
	s.play.Lock()
	defer s.play.Unlock()
	now := time.Now()
	// A token bucket of playBurst frames refilled at one per 20 ms: a far
	// end that paces itself, jitter included, is played as it arrives; a
	// burst or a bulk send is played in real time after its first
	// playBurst frames (which the bridge's jitter buffer absorbs).
	if s.last.IsZero() {
		s.tokens = playBurst
	} else {
		s.tokens = min(playBurst, s.tokens+float64(now.Sub(s.last))/float64(audio.FrameDuration))
	}
	s.last = now
	for s.tokens >= 1 && s.playOne(now) {
		s.tokens--
	}
}

// playOne plays one queued frame (play held); it reports whether there
// was one.
func (s *streamMedia) playOne(now time.Time) bool {
	s.mu.Lock()
	var pcm []int16
	if s.passthrough {
		if len(s.frames) > 0 {
			f := s.frames[0]
			s.pass = append(s.pass[:0], f...)
			pcm = s.pass
			s.frames = s.frames[:copy(s.frames, s.frames[1:])]
			s.spare = append(s.spare, f[:0])
			s.queued.Store(int64(len(s.frames)))
			if s.xoff && len(s.frames) < passXOnFrames {
				s.xoff = false
				s.notify("MEDIA_XON", "")
			}
		}
	} else if !s.paused && len(s.queue) > 0 {
		n := audio.FrameSamples
		pcm = s.pcm[:n]
		c := copy(pcm, s.queue)
		clear(pcm[c:]) // the tail of a short message is padded with silence
		s.queue = s.queue[:copy(s.queue, s.queue[min(n, len(s.queue)):])]
		s.queued.Store(int64(len(s.queue)))
		for i := range s.marks {
			s.marks[i].left -= n
		}
		for len(s.marks) > 0 && s.marks[0].left <= 0 {
			s.notify(s.marks[0].event, s.marks[0].id)
			s.marks = s.marks[1:]
		}
		if s.xoff && len(s.queue) < maxStreamQueue*8/10 {
			s.xoff = false
			s.notify("MEDIA_XON", "")
		}
		if s.drained && len(s.queue) == 0 {
			s.drained = false
			s.notify("QUEUE_DRAINED", "")
		}
	}
	s.mu.Unlock()
	if pcm == nil {
		return false
	}
	n := len(pcm)
	// Timestamps follow the wall clock (a pause is a gap, not a jump back)
	// and grow by at least a frame.
	if s.epoch.IsZero() {
		s.epoch = now
	}
	ts := uint32((now.Sub(s.epoch) + audio.FrameDuration/2) / audio.FrameDuration * audio.FrameSamples)
	if int32(ts-s.ts) < int32(n) {
		ts = s.ts + uint32(n)
	}
	s.ts = ts
	s.seq++ // one per frame handed on: an underrun is not loss
	ch := s.ch
	taps := ch.tapList()
	if len(taps) == 0 {
		return true
	}
	if ch.muteIn.Load() {
		clear(pcm)
	}
	s.at = now
	f := &s.frame
	*f = Frame{SSRC: s.ssrc, Timestamp: s.ts, Seq: s.seq, PCM: pcm, At: s.at}
	for _, e := range taps {
		e.tap.Audio(f)
	}
	return true
}

// flushQueue drops what the far end sent and has not been played yet.
func (s *streamMedia) flushQueue() {
	s.mu.Lock()
	s.queue = s.queue[:0]
	s.queued.Store(0)
	s.marks = nil
	s.paused = false
	s.mu.Unlock()
}

// Update implements Media.
func (s *streamMedia) Update(*net.UDPAddr, uint8, uint8) {}

// SendDigit implements Media: the digit goes to the far end (AudioSocket's
// DTMF message, chan_websocket's DTMF_END).
func (s *streamMedia) SendDigit(d rune, dur time.Duration) error {
	if t := s.transport(); t != nil {
		if err := t.writeDigit(d); err != nil {
			return err
		}
	}
	tm := time.NewTimer(dur)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-s.done:
	}
	return nil
}

// Arrival implements Media.
func (s *streamMedia) Arrival() time.Time { return s.at }

// Flush implements Media: the clock hands frames over.
func (s *streamMedia) Flush() {}

// SetOwned implements Media.
func (s *streamMedia) SetOwned(bool) {}

// Stats implements Media: frames sent and messages received.
func (s *streamMedia) Stats() rtp.Stats {
	return rtp.Stats{Sent: s.sent.Load(), Received: s.received.Load()}
}

// LocalAddr implements Media (no RTP socket).
func (s *streamMedia) LocalAddr() *net.UDPAddr { return nil }

// Remote implements Media.
func (s *streamMedia) Remote() *net.UDPAddr { return nil }

// Close implements Media: the clock stops and the far end is let go.
func (s *streamMedia) Close() error {
	s.closed.Do(func() {
		close(s.done)
		if s.tick != nil {
			s.tick.Remove()
		}
		if t := s.transport(); t != nil {
			t.close()
		}
	})
	return nil
}
