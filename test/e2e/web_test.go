package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// TestWebPageInChromium drives the web page in headless Chromium
// (playwright-core, test/node/web-ui.js) around a real call: baresip dials
// a Record() extension while the page watches the live calls; the page
// pauses, resumes and stops the recording, sees it arrive in the table of
// another tab without a reload, filters by number, opens it, plays it
// (duration as catalogued), sees the waveform, downloads, deletes and
// signs out. TAPEDECK_WEB_SCREENSHOTS=dir keeps the screenshots there
// (docs/ for the README).
func TestWebPageInChromium(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(chromium); err != nil {
		testutil.SkipOrFail(t, "chromium missing (%v); run scripts/test-deps.sh", err)
	}
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "test", "node", "node_modules", "playwright-core")); err != nil {
		testutil.SkipOrFail(t, "test/node/node_modules/playwright-core missing; run scripts/test-deps.sh")
	}
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = append(c.Dialplan, config.Route{Exten: "2001", App: "Record(web/${UNIQUEID},wav)"})
		c.Wazo.Admins = []config.WazoAdmin{{Name: "supervisor", Password: "s3cret-pw"}}
	})
	shots := os.Getenv("TAPEDECK_WEB_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join(testutil.RepoRoot(t), shots)
	}
	ui := nodeari.Start(t, "web-ui.js", map[string]string{
		"BASE_URL": n.baseURL(), "WEB_USER": "supervisor", "WEB_PASS": "s3cret-pw", "CALLER": "dave",
		"SHOTS": shots, "CHROMIUM": chromium, "TIMEOUT_MS": "30000",
	})
	step := func(typ string, timeout time.Duration) nodeari.Line {
		t.Helper()
		l, err := ui.WaitLine(typ, timeout)
		if err != nil {
			t.Fatalf("web page: no %s: %v\n%s", typ, err, ui.Output())
		}
		return l
	}
	step("SIGNED_IN", 60*time.Second)
	step("LIVE_READY", 30*time.Second)

	phone := baresip.Start(t, baresip.Options{User: "dave"})
	if err := phone.Dial(n.target("2001")); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.WaitEvent("CALL_ESTABLISHED", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	live := step("LIVE_CALL", 30*time.Second)
	if !strings.HasPrefix(live["recording"].(string), "web/") {
		t.Fatalf("live recording %v, want web/<id>", live["recording"])
	}
	step("PAUSED", 30*time.Second)
	step("RESUMED", 60*time.Second)
	step("STOPPED", 30*time.Second)
	if err := phone.Hangup(); err != nil {
		t.Fatal(err)
	}
	sid := step("IN_TABLE", 30*time.Second)["sid"].(string)
	step("FILTERED", 30*time.Second)
	played := step("PLAYED", 60*time.Second)
	if d := played["duration"].(float64); d < 2 {
		t.Fatalf("played %v s; the recording spans at least the 2 s pause", d)
	}
	dl := step("DOWNLOADED", 30*time.Second)
	if _, err := recorder.Lookup("mp3"); err == nil && dl["mp3"].(float64) < 1000 {
		t.Fatalf("no MP3 download though this server encodes MP3: %v", dl)
	}
	step("DELETED", 30*time.Second)
	step("SIGNED_OUT", 30*time.Second)
	if err := ui.Wait(30 * time.Second); err != nil {
		t.Fatalf("web-ui.js: %v\n%s", err, ui.Output())
	}
	t.Logf("recording %s: played %v s (catalog %v s)", sid, played["duration"], played["catalog"])
}
