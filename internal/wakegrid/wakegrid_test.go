package wakegrid

import (
	"testing"
	"time"
)

func TestUntilFrom(t *testing.T) {
	base := time.Unix(1_765_000_000, 0) // on every grid below
	for _, c := range []struct {
		at     time.Duration // after base
		period time.Duration
		want   time.Duration
	}{
		{0, 100 * time.Millisecond, 100 * time.Millisecond},
		{time.Nanosecond, 100 * time.Millisecond, 100*time.Millisecond - time.Nanosecond},
		{30 * time.Millisecond, 100 * time.Millisecond, 70 * time.Millisecond},
		{30 * time.Millisecond, 200 * time.Millisecond, 170 * time.Millisecond},
		{1250 * time.Millisecond, time.Second, 750 * time.Millisecond},
		{1250 * time.Millisecond, 2 * time.Second, 750 * time.Millisecond},
		{5 * time.Millisecond, 0, 0},
	} {
		if got := UntilFrom(base.Add(c.at), c.period); got != c.want {
			t.Errorf("UntilFrom(base+%v, %v) = %v, want %v", c.at, c.period, got, c.want)
		}
	}
	// Periods that divide one another share their instants: a second's
	// wake-up is also a 100 ms and a 200 ms one.
	now := time.Now()
	sec := now.Add(UntilFrom(now, time.Second))
	for _, p := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if UntilFrom(sec, p) != p {
			t.Errorf("the second's instant %v is not on the %v grid", sec, p)
		}
	}
}
