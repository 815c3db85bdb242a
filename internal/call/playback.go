package call

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/media"
)

// MediaResolver turns a media URI (sound:, recording:, number:, digits:,
// characters:, tone:) into audio.
type MediaResolver interface {
	Resolve(ctx context.Context, uri, lang string) (media.Source, error)
}

// PlaybackState is a playback's state as ARI reports it.
type PlaybackState string

func (s PlaybackState) String() string { return string(s) }

// Playback states as ARI reports them.
const (
	PbQueued     PlaybackState = "queued"
	PbPlaying    PlaybackState = "playing"
	PbContinuing PlaybackState = "continuing"
	PbPaused     PlaybackState = "paused"
	PbDone       PlaybackState = "done"
	PbFailed     PlaybackState = "failed"
)

// PlaybackJSON is ARI's Playback model.
type PlaybackJSON struct {
	ID           PlaybackID    `json:"id"`
	MediaURI     string        `json:"media_uri"`
	NextMediaURI string        `json:"next_media_uri,omitempty"`
	TargetURI    string        `json:"target_uri"`
	Language     string        `json:"language,omitempty"`
	State        PlaybackState `json:"state"`
}

// PlaybackOp is a control operation on a playback.
type PlaybackOp string

func (o PlaybackOp) String() string { return string(o) }

// Playback control operations (ARI's playbacks control).
const (
	PbRestart PlaybackOp = "restart"
	PbPause   PlaybackOp = "pause"
	PbUnpause PlaybackOp = "unpause"
	PbReverse PlaybackOp = "reverse"
	PbForward PlaybackOp = "forward"
	// pbStop is Stop's message to the playing goroutine (not an ARI operation).
	pbStop PlaybackOp = "stop"
)

// PlaybackEvent is PlaybackStarted, PlaybackContinuing or PlaybackFinished.
type PlaybackEvent struct {
	event.Base
	Playback PlaybackJSON `json:"playback"`
}

// PlayOptions are the parameters of POST .../play.
type PlayOptions struct {
	ID       PlaybackID // the client's id; generated when empty
	Media    []string
	Lang     string
	OffsetMs int
	SkipMs   int
}

// playbackTarget is what a playback plays to: a channel (or later a bridge).
type playbackTarget interface {
	targetURI() string
	// writeFrame sends one 20 ms frame of linear PCM to the target.
	writeFrame(pcm []int16)
	// publishPlayback publishes an event in the target's event order.
	publishPlayback(typ string, p PlaybackJSON)
	// gone is closed when the target goes away.
	gone() <-chan struct{}
}

// Playback is one play request: one or more media URIs played in order.
type Playback struct {
	m      *Manager
	id     string
	target playbackTarget
	media  []string
	lang   string
	offset int // ms, first item only
	skip   int // ms for forward/reverse

	mu      sync.Mutex
	state   PlaybackState
	index   int
	control chan PlaybackOp
	done    chan struct{}
	stopped bool
}

// ID is the playback id.
func (p *Playback) ID() string { return p.id }

// JSON snapshots the playback.
func (p *Playback) JSON() PlaybackJSON {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jsonLocked()
}

func (p *Playback) jsonLocked() PlaybackJSON {
	j := PlaybackJSON{ID: PlaybackID(p.id), TargetURI: p.target.targetURI(), Language: p.lang, State: p.state}
	if p.index < len(p.media) {
		j.MediaURI = p.media[p.index]
	}
	if p.index+1 < len(p.media) {
		j.NextMediaURI = p.media[p.index+1]
	}
	return j
}

// newPlayback validates options and registers the playback (409 if the
// id is taken).
func (m *Manager) newPlayback(t playbackTarget, o PlayOptions, lang string) (*Playback, error) {
	if len(o.Media) == 0 {
		return nil, errf(ErrInvalidArgument, "media is required")
	}
	for _, u := range o.Media {
		if !strings.Contains(u, ":") {
			return nil, errf(ErrInvalidArgument, "Invalid media URI %q", u)
		}
	}
	if o.OffsetMs < 0 || o.SkipMs < 0 {
		return nil, errf(ErrInvalidArgument, "offsetms and skipms must not be negative")
	}
	if o.SkipMs == 0 {
		o.SkipMs = 3000
	}
	if o.Lang != "" {
		lang = o.Lang
	}
	if o.ID == "" {
		o.ID = PlaybackID(uuid.NewString())
	}
	p := &Playback{m: m, id: string(o.ID), target: t, media: o.Media, lang: lang, offset: o.OffsetMs, skip: o.SkipMs,
		state: PbQueued, control: make(chan PlaybackOp, 8), done: make(chan struct{})}
	m.pbMu.Lock()
	defer m.pbMu.Unlock()
	if _, dup := m.playbacks[string(o.ID)]; dup {
		return nil, errf(ErrConflict, "Playback with id %s already exists", o.ID)
	}
	m.playbacks[string(o.ID)] = p
	return p, nil
}

// playback finds a playback by id.
func (m *Manager) playback(id string) (*Playback, error) {
	m.pbMu.Lock()
	defer m.pbMu.Unlock()
	p := m.playbacks[id]
	if p == nil {
		return nil, errf(ErrPlaybackNotFound, "Playback not found")
	}
	return p, nil
}

func (m *Manager) forgetPlayback(p *Playback) {
	m.pbMu.Lock()
	if m.playbacks[p.id] == p {
		delete(m.playbacks, p.id)
	}
	m.pbMu.Unlock()
}

// Stop stops the playback (or cancels it while queued).
func (p *Playback) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	queued := p.state == PbQueued
	p.mu.Unlock()
	if queued {
		p.finish(PbDone, false)
		return
	}
	select {
	case p.control <- pbStop:
	default:
	}
}

// Control applies restart, pause, unpause, reverse or forward.
func (p *Playback) Control(op PlaybackOp) error {
	switch op {
	case PbRestart, PbPause, PbUnpause, PbReverse, PbForward:
	default:
		return errf(ErrInvalidArgument, "Invalid operation %s", op)
	}
	p.mu.Lock()
	state := p.state
	p.mu.Unlock()
	switch state {
	case PbQueued:
		if op == PbRestart {
			return nil
		}
		return errf(ErrInvalidState, "Playback not yet started")
	case PbPaused:
		if op == PbRestart || op == PbReverse || op == PbForward {
			return errf(ErrInvalidState, "Can only %s while media is playing", op)
		}
	case PbDone, PbFailed:
		return errf(ErrInvalidState, "Playback has finished")
	}
	select {
	case p.control <- op:
		return nil
	default:
		return errf(ErrConflict, "Too many control operations pending")
	}
}

func (p *Playback) publish(typ string) {
	p.target.publishPlayback(typ, p.JSON())
}

// run plays every media item in order, paced at 20 ms per frame.
// runContained is run on the channel's or bridge's operations goroutine:
// a panic in one playback (a media source's bug) fails that playback only
// (PlaybackFinished, state failed), logged and counted as
// tapedeck_panics_total{site="playback"}; the queue goes on.
func (p *Playback) runContained(res MediaResolver) {
	defer contain.Recover(p.m.log, "playback", func() { p.finish(PbFailed, true) })
	p.run(res)
}

func (p *Playback) run(res MediaResolver) {
	p.mu.Lock()
	if p.stopped || p.state != PbQueued {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if h, ok := p.target.(interface{ holdMOHForPlayback() func() }); ok {
		if resume := h.holdMOHForPlayback(); resume != nil {
			defer resume()
		}
	}
	frame := make([]int16, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastFailed := false
	for i := range p.media {
		p.mu.Lock()
		p.index = i
		p.state = PbPlaying
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		src, err := res.Resolve(ctx, p.media[i], p.lang)
		cancel()
		if err != nil {
			p.m.log.Warn("playback media failed", "playback", p.id, "media", redactMedia(p.media[i]), "err", err)
			lastFailed = true
			if i+1 < len(p.media) {
				continue
			}
			break
		}
		lastFailed = false
		if i == 0 && p.offset > 0 {
			if sk, ok := src.(media.Seeker); ok {
				sk.Seek(int64(p.offset)*8, io.SeekStart)
			}
		}
		p.publish("PlaybackStarted")
		stopped := p.playItem(src, frame, tick)
		if c, ok := src.(io.Closer); ok {
			c.Close()
		}
		if stopped {
			p.finish(PbDone, true)
			return
		}
		if i+1 < len(p.media) {
			p.mu.Lock()
			p.state = PbContinuing
			p.mu.Unlock()
			p.publish("PlaybackContinuing")
		}
	}
	if lastFailed {
		p.finish(PbFailed, true)
		return
	}
	p.finish(PbDone, true)
}

// playItem plays one source until it ends or the playback is stopped.
func (p *Playback) playItem(src media.Source, frame []int16, tick *time.Ticker) (stopped bool) {
	paused := false
	skip := int64(p.skip) * 8
	for {
		select {
		case <-p.target.gone():
			return true
		case op := <-p.control:
			switch op {
			case pbStop:
				return true
			case PbPause:
				if !paused {
					paused = true
					p.setState(PbPaused)
				}
			case PbUnpause:
				if paused {
					paused = false
					p.setState(PbPlaying)
					p.publish("PlaybackStarted")
				}
			case PbRestart, PbReverse, PbForward:
				sk, ok := src.(media.Seeker)
				if !ok {
					continue
				}
				switch op {
				case PbRestart:
					sk.Seek(0, io.SeekStart)
				case PbReverse:
					sk.Seek(-skip, io.SeekCurrent)
				case PbForward:
					sk.Seek(skip, io.SeekCurrent)
				}
			}
		case <-tick.C:
			if paused {
				continue
			}
			n, err := src.Read(frame)
			if n > 0 {
				clear(frame[n:])
				p.target.writeFrame(frame)
			}
			if err != nil || n == 0 {
				return false
			}
		}
	}
}

func (p *Playback) setState(s PlaybackState) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}

// finish ends the playback with PlaybackFinished once.
func (p *Playback) finish(state PlaybackState, started bool) {
	p.mu.Lock()
	if p.state == PbDone || p.state == PbFailed {
		p.mu.Unlock()
		return
	}
	p.state = state
	p.mu.Unlock()
	p.m.forgetPlayback(p)
	p.publish("PlaybackFinished")
	close(p.done)
}

// Done is closed when the playback has finished.
func (p *Playback) Done() <-chan struct{} { return p.done }

var errNoResolver = errors.New("no media resolver configured")

type nopResolver struct{}

func (nopResolver) Resolve(context.Context, string, string) (media.Source, error) {
	return nil, errNoResolver
}

// Play queues a playback on the channel. Playing to an unanswered inbound
// channel sends 183 Session Progress first (early media).
func (ch *Channel) Play(o PlayOptions) (*Playback, error) {
	ch.mu.Lock()
	err := ch.checkLocked(true)
	ch.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return ch.play(o)
}

// play queues a playback without the Stasis check (third-party control).
func (ch *Channel) play(o PlayOptions) (*Playback, error) {
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		return nil, errChannelNotFound
	}
	if ch.state.outboundOnly() {
		ch.mu.Unlock()
		return nil, errChannelState
	}
	lang, up := ch.language, ch.state == StateUp
	ch.mu.Unlock()
	p, err := ch.m.newPlayback(ch, o, lang)
	if err != nil {
		return nil, err
	}
	if !up && ch.dialog != nil {
		if err := ch.Progress(); err != nil {
			ch.m.forgetPlayback(p)
			return nil, err
		}
	}
	res := ch.m.opts.Media
	if res == nil {
		res = nopResolver{}
	}
	if err := ch.enqueue(func() { p.runContained(res) }); err != nil {
		ch.m.forgetPlayback(p)
		return nil, err
	}
	go func() {
		// A channel that goes away finishes its queued playbacks too.
		select {
		case <-ch.done:
			p.Stop()
			p.mu.Lock()
			st := p.state
			p.mu.Unlock()
			if st == PbQueued {
				p.finish(PbDone, false)
			}
		case <-p.done:
		}
	}()
	return p, nil
}

func (ch *Channel) targetURI() string { return "channel:" + ch.id }

func (ch *Channel) gone() <-chan struct{} { return ch.done }

func (ch *Channel) publishPlayback(typ string, pj PlaybackJSON) {
	ch.mu.Lock()
	ch.publishLocked(&PlaybackEvent{Base: ch.m.base(typ), Playback: pj})
	ch.mu.Unlock()
}

// writeFrame sends one frame of playback audio to the caller (or, when the
// channel is bridged, into the bridge for this channel only).
func (ch *Channel) writeFrame(pcm []int16) {
	if ch.muteOut.Load() {
		return
	}
	if b := ch.bridgeOverlay.Load(); b != nil {
		(*b)(pcm)
		return
	}
	ch.sendPCM(pcm)
}

// sendPCM encodes a frame with the negotiated codec and sends it (the
// ops goroutine's buffer).
func (ch *Channel) sendPCM(pcm []int16) { ch.sendPCMWith(pcm, ch.outBuf) }

// writeFrameWith is writeFrame for a goroutine other than the channel's
// ops goroutine (music on hold), encoding into its own buffer.
func (ch *Channel) writeFrameWith(pcm []int16, out []byte) {
	if ch.muteOut.Load() {
		return
	}
	if b := ch.bridgeOverlay.Load(); b != nil {
		(*b)(pcm)
		return
	}
	ch.sendPCMWith(pcm, out)
}

func (ch *Channel) sendPCMWith(pcm []int16, out []byte) {
	ch.tapSent(pcm)
	buf := out[:len(pcm)]
	if ch.outPCMA.Load() {
		encodeAlaw(buf, pcm)
	} else {
		encodeMulaw(buf, pcm)
	}
	_ = ch.media.WriteAudio(buf, uint32(len(pcm)))
}

// redactMedia hides a password in a media URI's URL (sound:http://u:p@h/x)
// so that log lines never carry one.
func redactMedia(uri string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return uri
	}
	u, err := url.Parse(rest)
	if err != nil || u.User == nil {
		return uri
	}
	return scheme + ":" + u.Redacted()
}
