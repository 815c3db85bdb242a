package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
)

// TestPlayHTTPAllowList: `sound:http` fetches only from public addresses
// and sounds.http_allow. A media server on one loopback port is allowed and
// plays; a loopback "secret" service on another port, reached directly, by
// a redirect from the allowed server, or the server's own ARI with
// credentials in the URL, is refused: the playback finishes failed (as for
// a 404 URL) and the secret service never sees a request.
func TestPlayHTTPAllowList(t *testing.T) {
	var secretHits atomic.Int32
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		w.Header().Set("Content-Type", "audio/basic")
		w.Write(make([]byte, 8000))
	}))
	defer secret.Close()
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "audio/basic")
		w.Write(make([]byte, 1600)) // 200 ms of μ-law
	}))
	defer media.Close()
	n := startNode(t, func(c *config.Config) {
		c.Sounds.HTTPAllow = []string{strings.TrimPrefix(media.URL, "http://")}
	})
	events := n.connect("test")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("342"), sipua.CallOptions{Handler: &audioSink{}})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	must(t, wait(t, res, 10*time.Second, "answer").err)

	play := func(uri string) string {
		t.Helper()
		n.mustDo("POST", "/channels/"+id+"/play?media="+urlq(uri), 201)
		f := pbOf(events.skipTo("PlaybackFinished", 10*time.Second))
		return f["state"].(string)
	}
	if st := play("sound:" + media.URL + "/allowed.ulaw"); st != "done" {
		t.Fatalf("allowed media server: playback %s, want done", st)
	}
	for name, uri := range map[string]string{
		"loopback, not listed":  "sound:" + secret.URL + "/secret.ulaw",
		"redirect to loopback":  "sound:" + media.URL + "/r.ulaw?to=" + urlq(secret.URL+"/secret.ulaw"),
		"own ARI, credentials":  "sound:http://asterisk:asterisk@" + n.srv.HTTPAddr() + "/ari/asterisk/info",
		"credentials, allowed":  "sound:http://u:p@" + strings.TrimPrefix(media.URL, "http://") + "/x.ulaw",
		"private address":       "sound:http://10.255.255.1/x.ulaw",
		"link-local (metadata)": "sound:http://169.254.169.254/latest/meta-data/x.ulaw",
	} {
		if st := play(uri); st != "failed" {
			t.Errorf("%s: playback %s, want failed", name, st)
		}
	}
	if h := secretHits.Load(); h != 0 {
		t.Fatalf("the loopback secret service saw %d requests", h)
	}
}
