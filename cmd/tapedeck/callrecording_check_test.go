package main

import (
	"strings"
	"testing"
)

// tapedeck -t reports a bad call_recording file name template as a
// configuration error, naming the problem, rather than failing calls.
func TestConfigCheckFilenameTemplate(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"does not parse": {"call_recording:\n  filename_template: \"user-{{ srcnum \"\n",
			`call_recording: recname: bad filename template "user-{{ srcnum "`},
		"unknown variable": {"call_recording:\n  filename_template: \"{{ callerid }}-{{ dstnum }}\"\n",
			`callerid`},
		"absolute, not allowed": {"call_recording:\n  filename_template: \"/home/pcm/call/user-{{ srcnum }}\"\n",
			`call_recording: recname: file name outside the recordings root and the allowed directories: template "/home/pcm/call/user-{{ srcnum }}" gives "/home/pcm/call/user-1001.wav"`},
		"unknown extension": {"call_recording:\n  filename_extension: wma\n",
			`call_recording: recname: filename_extension "wma"`},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := checkConfig(t, tc.yaml)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("tapedeck -t = %d:\n%s\nwant an error containing %q", code, out, tc.want)
			}
		})
	}
	for name, yaml := range map[string]string{
		"the seed's example 1": "call_recording:\n  filename_template: \"{{ tenant_uuid }}/{{ utc_time }}-{{ srcnum }}-{{ dstnum }}\"\n",
		"the seed's example 2, allowed": "call_recording:\n  filename_template: \"/home/pcm/call/user-{{ srcnum }}-{{ dstnum }}-{{ timestamp }}\"\n" +
			"  allowed_dirs: [/home/pcm/call]\n  filename_extension: wav\n",
	} {
		t.Run(name, func(t *testing.T) {
			if code, out := checkConfig(t, yaml); code != 0 {
				t.Fatalf("tapedeck -t = %d:\n%s", code, out)
			}
		})
	}
}
