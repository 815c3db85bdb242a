package config

import (
	"strings"
	"testing"
)

// recording.fsync_interval_seconds: 2 by default, 0 allowed (never fsync),
// negative refused with the key's name.
func TestRecordingFsyncInterval(t *testing.T) {
	if c := Default(); c.Recording.FsyncIntervalSeconds != 2 {
		t.Fatalf("default recording.fsync_interval_seconds %d, want 2", c.Recording.FsyncIntervalSeconds)
	}
	for text, want := range map[string]string{
		"recording:\n  fsync_interval_seconds: 0\n":  "",
		"recording:\n  fsync_interval_seconds: 5\n":  "",
		"recording:\n  fsync_interval_seconds: -1\n": "recording.fsync_interval_seconds: -1 is negative (0 never fsyncs)",
	} {
		c := Default()
		if err := Parse([]byte(text), &c); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", text, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

// recording.degraded_loss_percent: 2 by default, 0 to 100 allowed, anything
// else refused with the key's name.
func TestRecordingDegradedLossPercent(t *testing.T) {
	if c := Default(); c.Recording.DegradedLossPercent != 2 {
		t.Fatalf("default recording.degraded_loss_percent %v, want 2", c.Recording.DegradedLossPercent)
	}
	for text, want := range map[string]string{
		"recording:\n  degraded_loss_percent: 0\n":    "",
		"recording:\n  degraded_loss_percent: 7.5\n":  "",
		"recording:\n  degraded_loss_percent: -1\n":   "recording.degraded_loss_percent: -1 is not a percentage",
		"recording:\n  degraded_loss_percent: 101\n":  "recording.degraded_loss_percent: 101 is not a percentage",
		"recording:\n  degraded_loss_percent: .nan\n": "recording.degraded_loss_percent: NaN is not a percentage",
	} {
		c := Default()
		if err := Parse([]byte(text), &c); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", text, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

// recording.checksum: on_demand by default, background allowed, anything
// else refused with the key's name and the values it takes.
func TestRecordingChecksum(t *testing.T) {
	if c := Default(); c.Recording.Checksum != ChecksumOnDemand {
		t.Fatalf("default recording.checksum %q, want %q", c.Recording.Checksum, ChecksumOnDemand)
	}
	for text, want := range map[string]string{
		"recording:\n  checksum: on_demand\n":  "",
		"recording:\n  checksum: background\n": "",
		"recording:\n  checksum: at_finish\n":  `recording.checksum: "at_finish" is not one of on_demand (default) or background`,
		"recording:\n  checksum: \"\"\n":       `recording.checksum: "" is not one of on_demand (default) or background`,
	} {
		c := Default()
		if err := Parse([]byte(text), &c); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", text, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
