package main

import "testing"

// tapedeck -t checks the registrar's limits (sip.registrar), each with a
// message naming the key; a good set passes.
func TestConfigCheckRegistrarLimits(t *testing.T) {
	reg := func(body string) string { return "sip:\n  registrar:\n" + body }
	for name, tc := range map[string]struct{ yaml, want string }{
		"min expires zero": {reg("    min_expires_seconds: 0\n"),
			"sip.registrar.min_expires_seconds: 0 is outside 1-604800"},
		"max below min": {reg("    min_expires_seconds: 600\n    max_expires_seconds: 300\n    default_expires_seconds: 300\n"),
			"sip.registrar.min_expires_seconds: 600 is above max_expires_seconds (300)\n" +
				"sip.registrar.default_expires_seconds: 300 is outside min_expires_seconds-max_expires_seconds (600-300)"},
		"default above max": {reg("    max_expires_seconds: 1800\n"),
			"sip.registrar.default_expires_seconds: 3600 is outside min_expires_seconds-max_expires_seconds (60-1800)"},
		"max expires beyond a week": {reg("    max_expires_seconds: 9999999\n"),
			"sip.registrar.max_expires_seconds: 9999999 is outside 1-604800"},
		"no contacts": {reg("    max_contacts_per_user: 0\n"),
			"sip.registrar.max_contacts_per_user: 0 is outside 1-1000"},
		"huge contact lists": {reg("    max_contacts_per_request: 100000\n"),
			"sip.registrar.max_contacts_per_request: 100000 is outside 1-1000"},
		"rate negative": {reg("    registers_per_second_per_source: -1\n"),
			"sip.registrar.registers_per_second_per_source: -1 is not above 0 (and at most 1000000)"},
		"burst zero": {reg("    register_burst_per_source: 0\n"),
			"sip.registrar.register_burst_per_source: 0 is outside 1-1000000"},
		"failure threshold zero": {reg("    auth_failure_threshold: 0\n"),
			"sip.registrar.auth_failure_threshold: 0 is outside 1-100000"},
		"failure window zero": {reg("    auth_failure_window_seconds: 0\n"),
			"sip.registrar.auth_failure_window_seconds: 0 is outside 1-86400"},
		"nonce ttl too short": {reg("    nonce_ttl_seconds: 5\n"),
			"sip.registrar.nonce_ttl_seconds: 5 is outside 10-86400"},
		"misspelt key": {reg("    max_contact_per_user: 3\n"),
			""},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := checkConfig(t, tc.yaml)
			if tc.want == "" {
				if code == 0 {
					t.Errorf("exit 0 for an unknown key, output:\n%s", out)
				}
				return
			}
			want := "tapedeck: invalid configuration:\n" + tc.want + "\n"
			if code != 1 || out != want {
				t.Errorf("exit %d, output:\n%s\nwant exit 1:\n%s", code, out, want)
			}
		})
	}
	good := reg("    min_expires_seconds: 30\n    max_expires_seconds: 7200\n    default_expires_seconds: 600\n" +
		"    max_contacts_per_user: 3\n    max_contacts_per_request: 5\n    registers_per_second_per_source: 2.5\n" +
		"    register_burst_per_source: 10\n    auth_failure_threshold: 3\n    auth_failure_window_seconds: 120\n    nonce_ttl_seconds: 60\n")
	if code, out := checkConfig(t, good); code != 0 {
		t.Fatalf("good limits: exit %d\n%s", code, out)
	}
}
