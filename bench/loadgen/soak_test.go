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

// Flat series pass (ramp samples outside the steady window are ignored);
// a growing RSS, goroutine count or descriptor count fails with the reason.
func TestAnalyseSoak(t *testing.T) {
	steady := func(i int) soakSample {
		ch := int64(200)
		if i < 5 {
			ch = int64(40 * i) // ramp up: not part of the window
		}
		return soakSample{Channels: ch, RSSKB: 40000 + int64(i%3)*300, Goroutines: 230 + int64(i%2), FDs: 420}
	}
	if r := analyseSoak(soakSeries(60, steady), 200); !r.Flat || r.Samples != 55 {
		t.Fatalf("flat series judged %+v", r)
	}
	for _, tc := range []struct {
		name string
		grow func(i int, p *soakSample)
	}{
		{"RSS", func(i int, p *soakSample) { p.RSSKB += int64(i) * 200 }},
		{"goroutines", func(i int, p *soakSample) { p.Goroutines += int64(i / 4) }},
		{"descriptors", func(i int, p *soakSample) { p.FDs += int64(i / 4) }},
	} {
		r := analyseSoak(soakSeries(60, func(i int) soakSample { p := steady(i); tc.grow(i, &p); return p }), 200)
		if r.Flat || !strings.Contains(r.Why, tc.name) {
			t.Errorf("%s leak judged flat=%v why=%q", tc.name, r.Flat, r.Why)
		}
	}
	if r := analyseSoak(soakSeries(8, steady), 200); r.Flat || r.Why == "" {
		t.Fatalf("too short a run judged %+v", r)
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
