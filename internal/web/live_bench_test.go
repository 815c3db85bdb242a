package web

import (
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/event"
)

// BenchmarkLivePageCallEvents publishes the events of one recorded call that
// no ARI application follows (scenario a's calls) with the live page's
// observer attached, as the server does, and waits until the page has taken
// them: per op, one call's events, their publishing and the page's work
// (cpu-ns/op: the process's CPU time, both goroutines).
func BenchmarkLivePageCallEvents(b *testing.B) {
	bus := event.NewBus("bench")
	l := newLive(&fakeCalls{state: "recording"}, bus, slog.New(slog.DiscardHandler))
	defer l.close()
	ch := call.ChannelJSON{ID: "vm-0ba83c94-1796539090.1", ProtocolID: "b87eff9f-6fec-481c-94d7-e72368bce5d3", Name: "PJSIP/loadgen-00000001",
		State: "Up", Caller: call.CallerID{Number: "loadgen"}, Dialplan: call.DialplanCEP{Context: "default", Exten: "2001", Priority: 1},
		Creationtime: event.Time(time.Now()), Language: "en"}
	rec := call.LiveRecordingJSON{Name: "calls/2001-vm-0ba83c94-1796539090.1", Format: "wav", TargetURI: "channel:" + string(ch.ID), State: "recording"}
	src := []string{"channel:" + string(ch.ID)}
	chEv := func(typ string) event.Event {
		return event.Event{Type: typ, Sources: src, Body: &call.ChannelEvent{Base: event.Base{Type: typ, Timestamp: event.Time(time.Now())}, Channel: ch}}
	}
	recEv := func(typ string) event.Event {
		return event.Event{Type: typ, Sources: src, Body: &call.RecordingEvent{Base: event.Base{Type: typ, Timestamp: event.Time(time.Now())}, Recording: rec}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		bus.Publish(chEv("ChannelCreated"))
		bus.Publish(event.Event{Type: "ChannelDialplan", Sources: src, Body: &call.ChannelDialplan{Base: event.Base{Type: "ChannelDialplan"}, DialplanApp: "Record", DialplanAppData: "calls/2001-x,wav", Channel: ch}})
		bus.Publish(chEv("ChannelStateChange"))
		bus.Publish(recEv("RecordingStarted"))
		bus.Publish(recEv("RecordingFinished"))
		bus.Publish(chEv("ChannelHangupRequest"))
		bus.Publish(chEv("ChannelDestroyed"))
		if i%64 == 63 || i == b.N-1 { // the page keeps up (its queue holds 4,096)
			for {
				l.mu.Lock()
				n := l.finished
				l.mu.Unlock()
				if n == i+1 {
					break
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
