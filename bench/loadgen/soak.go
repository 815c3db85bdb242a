package main

import (
	"fmt"
	"os"
	"sync"
)

// A soak run holds many calls up, with calls ending and new ones replacing
// them, for minutes: the server's RSS, goroutines and open descriptors
// must stay flat while the number of calls does. The sampler records a
// point every few seconds; analyseSoak compares the start and the end of
// the steady part: all calls up, after a warm-up of one call duration
// (until the first generation of calls has ended and been replaced, every
// path of a call has run once, the Go heap has reached its goal and the
// catalog's page caches are full).

type soakSample struct {
	At         float64 `json:"t_s"` // seconds since the first INVITE
	Channels   int64   `json:"channels"`
	RSSKB      int64   `json:"rss_kb"`
	Goroutines int64   `json:"goroutines"`
	FDs        int64   `json:"fds"`
	HeapLiveKB int64   `json:"heap_live_kb"` // Go heap marked live by the last GC (-1: not reported)
	GoHeldKB   int64   `json:"go_held_kb"`   // memory the Go runtime holds from the OS (-1: not reported)
}

// SoakReport is the steady window's first and last fifth, averaged.
type SoakReport struct {
	WarmupSeconds  float64      `json:"warmup_seconds"` // all calls up but not yet judged
	RSSAllUpKB     float64      `json:"rss_all_up_kb"`  // mean over the warm-up (all calls just up)
	SteadySeconds  float64      `json:"steady_seconds"`
	Samples        int          `json:"samples"`
	RSSStartKB     float64      `json:"rss_start_kb"`
	RSSEndKB       float64      `json:"rss_end_kb"`
	GoroutineStart float64      `json:"goroutines_start"`
	GoroutineEnd   float64      `json:"goroutines_end"`
	FDStart        float64      `json:"fds_start"`
	FDEnd          float64      `json:"fds_end"`
	HeapStartKB    float64      `json:"heap_live_start_kb"`
	HeapEndKB      float64      `json:"heap_live_end_kb"`
	GoHeldStartKB  float64      `json:"go_held_start_kb"`
	GoHeldEndKB    float64      `json:"go_held_end_kb"`
	RSSTailSlope   float64      `json:"rss_tail_kb_per_min"` // least-squares slope over the window's second half
	Flat           bool         `json:"flat"`
	Why            string       `json:"why,omitempty"`
	Series         []soakSample `json:"series"`
}

// Limits of "flat": growth from the start to the end of the steady window.
const (
	soakRSSGrowth = 0.05 // RSS may move 5 % (GC pacing; pages of the binary touched for the first time)
	soakGorSlack  = 0.02 // goroutines: 2 % of the steady count, at least 4
	soakFDSlack   = 0.02 // descriptors: 2 %, at least 4
)

type series struct {
	mu  sync.Mutex
	pts []soakSample
}

func (s *series) add(p soakSample) {
	s.mu.Lock()
	s.pts = append(s.pts, p)
	s.mu.Unlock()
}

func (s *series) all() []soakSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]soakSample(nil), s.pts...)
}

func countFDs(pid int) int64 {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return int64(len(ents))
}

// analyseSoak finds the steady window (channels at least 95 % of the
// expected number up, from warmup seconds after they first were) and
// compares its first and last fifth.
func analyseSoak(pts []soakSample, wantChannels int64, warmup float64) *SoakReport {
	rep := &SoakReport{Series: pts, WarmupSeconds: warmup}
	var up, warm, steady []soakSample
	for _, p := range pts {
		if wantChannels > 0 && p.Channels*100 >= wantChannels*95 {
			up = append(up, p)
			if p.At >= up[0].At+warmup {
				steady = append(steady, p)
			} else {
				warm = append(warm, p)
			}
		}
	}
	rep.Samples = len(steady)
	if len(steady) < 10 {
		rep.Why = fmt.Sprintf("only %d samples with all %d channels up after the %.0f s warm-up: run longer (-soak wants minutes)", len(steady), wantChannels, warmup)
		return rep
	}
	rep.SteadySeconds = steady[len(steady)-1].At - steady[0].At
	k := len(steady) / 5
	mean := func(ps []soakSample, f func(soakSample) int64) float64 {
		var s float64
		for _, p := range ps {
			s += float64(f(p))
		}
		return s / float64(len(ps))
	}
	head, tail := steady[:k], steady[len(steady)-k:]
	rss := func(p soakSample) int64 { return p.RSSKB }
	gor := func(p soakSample) int64 { return p.Goroutines }
	fds := func(p soakSample) int64 { return p.FDs }
	rep.RSSStartKB, rep.RSSEndKB = mean(head, rss), mean(tail, rss)
	rep.GoroutineStart, rep.GoroutineEnd = mean(head, gor), mean(tail, gor)
	rep.FDStart, rep.FDEnd = mean(head, fds), mean(tail, fds)
	heap := func(p soakSample) int64 { return p.HeapLiveKB }
	rep.HeapStartKB, rep.HeapEndKB = mean(head, heap), mean(tail, heap)
	held := func(p soakSample) int64 { return p.GoHeldKB }
	rep.GoHeldStartKB, rep.GoHeldEndKB = mean(head, held), mean(tail, held)
	if len(warm) == 0 { // no warm-up asked for
		warm = up[:1]
	}
	rep.RSSAllUpKB = mean(warm, rss)
	rep.RSSTailSlope = slopePerMin(steady[len(steady)/2:], rss)
	var why []string
	if rep.RSSEndKB > rep.RSSStartKB*(1+soakRSSGrowth) {
		why = append(why, fmt.Sprintf("RSS grew %.0f → %.0f KiB", rep.RSSStartKB, rep.RSSEndKB))
	}
	if rep.GoroutineEnd > rep.GoroutineStart+max(4, soakGorSlack*rep.GoroutineStart) {
		why = append(why, fmt.Sprintf("goroutines grew %.0f → %.0f", rep.GoroutineStart, rep.GoroutineEnd))
	}
	if rep.FDEnd > rep.FDStart+max(4, soakFDSlack*rep.FDStart) {
		why = append(why, fmt.Sprintf("descriptors grew %.0f → %.0f", rep.FDStart, rep.FDEnd))
	}
	rep.Flat = len(why) == 0
	if !rep.Flat {
		rep.Why = fmt.Sprint(why)
	}
	return rep
}

// slopePerMin is the least-squares slope of f over the samples, per minute.
func slopePerMin(ps []soakSample, f func(soakSample) int64) float64 {
	n := float64(len(ps))
	if n < 2 {
		return 0
	}
	var st, sy, stt, sty float64
	for _, p := range ps {
		t, y := p.At/60, float64(f(p))
		st, sy, stt, sty = st+t, sy+y, stt+t*t, sty+t*y
	}
	d := n*stt - st*st
	if d == 0 {
		return 0
	}
	return (n*sty - st*sy) / d
}

func (s *soakSample) String() string {
	return fmt.Sprintf("t=%4.0fs channels=%d rss=%d KiB goroutines=%d fds=%d", s.At, s.Channels, s.RSSKB, s.Goroutines, s.FDs)
}
