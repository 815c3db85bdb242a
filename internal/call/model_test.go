package call

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestEventTypesComplete: every base(TYPE) call of the package is listed in
// EventTypes, which the ARI docs test checks against events.json.
func TestEventTypesComplete(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`(?:base|publish)\("(\w+)"\)`)
	seen := 0
	for _, f := range files {
		if filepath.Ext(f) == ".go" && len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			seen++
			if !slices.Contains(EventTypes, m[1]) {
				t.Errorf("%s publishes %s, which is not in EventTypes", f, m[1])
			}
		}
	}
	if seen < len(EventTypes) {
		t.Errorf("found %d publications for %d event types", seen, len(EventTypes))
	}
}

func TestRedactMedia(t *testing.T) {
	for in, want := range map[string]string{
		"sound:http://asterisk:secret@127.0.0.1:8088/ari/x": "sound:http://asterisk:xxxxx@127.0.0.1:8088/ari/x",
		"sound:https://u@h/x.wav":                           "sound:https://u@h/x.wav",
		"sound:http://h/x.wav":                              "sound:http://h/x.wav",
		"sound:tt-monkeys":                                  "sound:tt-monkeys",
		"tone:ring":                                         "tone:ring",
		"recording:a/b":                                     "recording:a/b",
	} {
		if got := redactMedia(in); got != want {
			t.Errorf("redactMedia(%q) = %q, want %q", in, got, want)
		}
	}
}
