package restcomm

import (
	"strings"
	"testing"
	"time"
)

// FuzzRestcommDates feeds StartTime/EndTime values to parseTime: it never
// panics, what it accepts is in UTC and is the instant the text names (a
// date is its midnight UTC; a date-time without a zone is UTC), and
// writing the result back as RFC 3339 reads back the same instant.
func FuzzRestcommDates(f *testing.F) {
	for _, s := range []string{
		"2026-03-01", "2026-03-01T12:00:01", "2026-03-01T13:00:01+01:00", "2026-03-01T12:00:01.123456789Z",
		"2026-03-01 12:00:04", "2026-02-30", "0000-01-01", "9999-12-31T23:59:59-23:59", "2026-3-1", "yesterday",
		"2026-03-01T24:00:00", "2026-03-01T12:00:01+25:00", "", " 2026-03-01", "2026-03-01T12:00:01Z07:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime(s)
		if err != nil {
			if !strings.Contains(err.Error(), "ISO-8601") {
				t.Fatalf("%q: error %v does not say what is expected", s, err)
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("%q: %v is not UTC", s, tm)
		}
		if len(s) == len("2006-01-02") {
			if tm.Hour() != 0 || tm.Minute() != 0 || tm.Second() != 0 || tm.Nanosecond() != 0 || tm.Format("2006-01-02") != s {
				t.Fatalf("date %q read as %v", s, tm)
			}
		}
		if len(s) >= 19 && !strings.ContainsAny(s[10:], "Z+-") && tm.Format("2006-01-02T15:04:05") != strings.Replace(s, " ", "T", 1)[:19] {
			t.Fatalf("zoneless %q read as %v", s, tm)
		}
		if tm.Year() < 0 || tm.Year() > 9999 {
			return // RFC 3339 has no text for it
		}
		back, err := time.Parse(time.RFC3339Nano, tm.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("%q: %v does not round-trip (%v, %v)", s, tm, back, err)
		}
	})
}
