package main

import (
	"strings"
	"testing"
)

func soakSeries(n int, f func(i int) soakSample) []soakSample {
	var out []soakSample
	for i := range n {
		p := f(i)
		p.At = float64(5 * i)
		out = append(out, p)
	}
	return out
}

// Flat series pass (ramp samples and the warm-up are outside the steady
// window); a growing RSS, goroutine count or descriptor count fails with
// the reason.
func TestAnalyseSoak(t *testing.T) {
	steady := func(i int) soakSample {
		ch := int64(200)
		if i < 5 {
			ch = int64(40 * i) // ramp up: not part of the window
		}
		return soakSample{Channels: ch, RSSKB: 40000 + int64(i%3)*300, Goroutines: 230 + int64(i%2), FDs: 420}
	}
	// Samples every 5 s; all up from sample 5 (25 s); a 60 s warm-up
	// leaves samples 17..79 to judge.
	const warmup = 60
	if r := analyseSoak(soakSeries(80, steady), 200, warmup); !r.Flat || r.Samples != 63 || r.RSSAllUpKB == 0 {
		t.Fatalf("flat series judged %+v", r)
	}
	for _, tc := range []struct {
		name string
		grow func(i int, p *soakSample)
	}{
		{"RSS", func(i int, p *soakSample) { p.RSSKB += int64(i) * 50 }}, // +10 % over the window
		{"goroutines", func(i int, p *soakSample) { p.Goroutines += int64(i / 4) }},
		{"descriptors", func(i int, p *soakSample) { p.FDs += int64(i / 4) }},
	} {
		r := analyseSoak(soakSeries(80, func(i int) soakSample { p := steady(i); tc.grow(i, &p); return p }), 200, warmup)
		if r.Flat || !strings.Contains(r.Why, tc.name) {
			t.Errorf("%s leak judged flat=%v why=%q", tc.name, r.Flat, r.Why)
		}
	}
	// Growth during the warm-up (caches filling, the heap reaching its
	// goal) is not judged; the same growth after it is.
	warm := func(i int) soakSample {
		p := steady(i)
		p.RSSKB += 6000 * int64(min(i, 16)) / 16
		return p
	}
	if r := analyseSoak(soakSeries(80, warm), 200, warmup); !r.Flat || r.RSSAllUpKB >= r.RSSStartKB {
		t.Fatalf("growth within the warm-up judged %+v (RSS %.0f in the warm-up, %.0f after)", r.Why, r.RSSAllUpKB, r.RSSStartKB)
	}
	late := func(i int) soakSample {
		p := steady(i)
		p.RSSKB += 6000 * int64(max(0, min(i, 60)-20)) / 40
		return p
	}
	r := analyseSoak(soakSeries(80, late), 200, warmup)
	if r.Flat || !strings.Contains(r.Why, "RSS") {
		t.Fatalf("growth after the warm-up judged flat: %+v", r)
	}
	if r.RSSTailSlope <= 0 {
		t.Errorf("RSS still growing in the second half, slope %.1f KiB/min", r.RSSTailSlope)
	}
	if r := analyseSoak(soakSeries(20, steady), 200, warmup); r.Flat || !strings.Contains(r.Why, "warm-up") {
		t.Fatalf("too short a run judged %+v", r)
	}
}

func TestSlopePerMin(t *testing.T) {
	ps := soakSeries(13, func(i int) soakSample { return soakSample{RSSKB: 1000 + int64(i)*10} }) // +10 KiB per 5 s
	if got := slopePerMin(ps, func(p soakSample) int64 { return p.RSSKB }); got < 119.9 || got > 120.1 {
		t.Fatalf("slope = %.2f KiB/min, want 120", got)
	}
}

// The RSS with all calls up is the median of the samples taken at (within
// 5 % of) the most channels, not the ramp or the tear-down.
func TestRSSAllUp(t *testing.T) {
	s := &sampler{}
	if got := s.rssAllUp(); got != -1 {
		t.Fatalf("no samples: %d", got)
	}
	for _, u := range []upSample{{0, 1000}, {50, 1500}, {100, 2000}, {99, 2100}, {100, 2050}, {100, 9000}, {40, 9999}, {0, 3000}} {
		s.up = append(s.up, u)
	}
	if got := s.rssAllUp(); got != 2100 {
		t.Fatalf("rssAllUp = %d, want 2100 (median of 2000, 2050, 2100, 9000)", got)
	}
}
