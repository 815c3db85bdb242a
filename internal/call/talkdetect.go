package call

import (
	"strconv"
	"strings"

	"github.com/tapedeck/tapedeck/internal/recorder"
)

// TALK_DETECT (Asterisk's func_talkdetect), set with setChannelVar:
// TALK_DETECT(set)=[silence_ms[,talking_threshold]] starts it,
// TALK_DETECT(remove) stops it. A received frame whose average magnitude
// reaches talking_threshold (default 256, Asterisk's DSP threshold) is
// talking: the first starts ChannelTalkingStarted; silence_ms (default
// 2500) of silence after talking sends ChannelTalkingFinished with the
// talking time in milliseconds (the silence not counted). Durations are
// counted in samples, not read from a clock.

// ChannelTalkingFinished reports the end of talking on a channel.
type ChannelTalkingFinished struct {
	eventBase
	Channel  ChannelJSON `json:"channel"`
	Duration int         `json:"duration"`
}

type talkDetector struct {
	NoOpTap
	silenceSamples int
	threshold      int
	talking        bool
	talked         int            // samples since talking started
	silent         int            // samples of silence in a row
	events         chan talkEvent // never closed: the media path may still hold the tap
	quit           chan struct{}  // closed when the detector is removed
	detach         func()
}

type talkEvent struct {
	started    bool
	durationMs int
}

// Audio runs on the media path: classify, and hand transitions to the
// detector's goroutine, which publishes them in order.
func (d *talkDetector) Audio(f *Frame) {
	if recorder.Talking(f.PCM, d.threshold) {
		d.silent = 0
		if !d.talking {
			d.talking, d.talked = true, 0
			d.send(talkEvent{started: true})
		}
		d.talked += len(f.PCM)
		return
	}
	if !d.talking {
		return
	}
	d.silent += len(f.PCM)
	d.talked += len(f.PCM)
	if d.silent >= d.silenceSamples {
		d.talking = false
		d.send(talkEvent{durationMs: (d.talked - d.silent) / 8})
	}
}

func (d *talkDetector) send(ev talkEvent) {
	select {
	case d.events <- ev:
	default: // the publisher is far behind: drop rather than block the media path
	}
}

func (ch *Channel) publishTalk(d *talkDetector) {
	for {
		var ev talkEvent
		select {
		case ev = <-d.events:
		case <-d.quit:
			return
		}
		ch.mu.Lock()
		if ch.talk != d {
			ch.mu.Unlock()
			return
		}
		if ev.started {
			ch.publishLocked(&ChannelEvent{Base: ch.m.base("ChannelTalkingStarted"), Channel: ch.jsonLocked()})
		} else {
			ch.publishLocked(&ChannelTalkingFinished{eventBase: ch.m.base("ChannelTalkingFinished"), Channel: ch.jsonLocked(), Duration: ev.durationMs})
		}
		ch.mu.Unlock()
	}
}

// talkDetectLocked handles TALK_DETECT(set|remove); ch.mu is held.
func (ch *Channel) talkDetectLocked(op, value string) error {
	switch op {
	case "remove":
		ch.stopTalkLocked()
		return nil
	case "set":
	default:
		return errf(ErrInvalidArgument, "TALK_DETECT: unknown action %q (set, remove)", op)
	}
	silenceMs, threshold := 2500, recorder.DSPThreshold
	if value != "" {
		a, b, hasB := strings.Cut(value, ",")
		n, err := strconv.Atoi(strings.TrimSpace(a))
		if a != "" && (err != nil || n <= 0) {
			return errf(ErrInvalidArgument, "TALK_DETECT: invalid silence threshold %q", a)
		}
		if a != "" {
			silenceMs = n
		}
		if hasB {
			n, err := strconv.Atoi(strings.TrimSpace(b))
			if err != nil || n <= 0 {
				return errf(ErrInvalidArgument, "TALK_DETECT: invalid talking threshold %q", b)
			}
			threshold = n
		}
	}
	ch.stopTalkLocked() // Asterisk updates the thresholds of a running detector
	d := &talkDetector{silenceSamples: silenceMs * 8, threshold: threshold, events: make(chan talkEvent, 64), quit: make(chan struct{})}
	e := ch.addTapLocked(d, StageSink)
	d.detach = func() { ch.removeTap(e) }
	ch.talk = d
	go ch.publishTalk(d)
	return nil
}

// stopTalkLocked removes the TALK_DETECT detector, if any; ch.mu is held.
func (ch *Channel) stopTalkLocked() {
	d := ch.talk
	if d == nil {
		return
	}
	ch.talk = nil
	close(d.quit)
	go d.detach() // removeTap takes ch.mu
}
