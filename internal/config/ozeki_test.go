package config

import (
	"strings"
	"testing"
)

// TestOzekiValidation: each bad ozeki or webhook setting is named.
func TestOzekiValidation(t *testing.T) {
	c := Default()
	c.Ozeki = Ozeki{
		Listen:      "nohost",
		Users:       []OzekiUser{{Username: "a", Password: ""}, {Username: "A", Password: "p", AllowFrom: []string{"10.0.0.0/8", "x"}}},
		RecordPaths: []string{"rel"},
		Folder:      "../out",
		PublicURL:   "ftp://x",

		ScriptFailureURL: "mailto:ops",
	}
	c.Webhook = Webhook{Allow: []string{""}, MaxAttempts: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"ozeki.listen", "ozeki.users[0]: username and password are required", `ozeki.users[1]: username "A" is listed twice`,
		`allow_from: "x"`, `ozeki.record_paths: "rel"`, "ozeki.folder", "ozeki.public_url", "ozeki.script_failure_url", "webhook.allow", "webhook: timeout_seconds"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	good := Default()
	good.Ozeki = Ozeki{Listen: "127.0.0.1:9509", Users: []OzekiUser{{Username: "u", Password: "p", AllowFrom: []string{"127.0.0.1", "::1/128"}}},
		RecordPaths: []string{"/srv/rec"}}
	good.Webhook = Webhook{Allow: []string{"127.0.0.1", "hooks.example.com:8080"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
}
