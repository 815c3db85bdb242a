package ozeki

import (
	"testing"
	"time"
)

// appendStartTime writes what time.Format writes, in every zone shape.
func TestFormatStartTime(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", 2*3600), time.FixedZone("y", -(5*3600 + 30*60)),
		time.FixedZone("z", 45*60), time.FixedZone("s", 3600+7)}
	times := []time.Time{time.Date(2026, 12, 5, 3, 4, 5, 123456789, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(2024, 2, 29, 12, 0, 0, 100, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()}
	for _, z := range zones {
		for _, tm := range times {
			tm = tm.In(z)
			if got, want := string(appendStartTime([]byte("x"), tm)[1:]), tm.Format(startTimeLayout); got != want {
				t.Errorf("%v: %q, want %q", tm, got, want)
			}
		}
	}
}
