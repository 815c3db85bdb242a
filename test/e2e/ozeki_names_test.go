package e2e

import (
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
)

// TestOzekiRecordTwiceAtOnce: Record commands sent at the same moment on one
// live baresip call (their file names are the call and the millisecond) all
// answer 200, and each recording gets a file of its own: as many
// RecordCompleted notifications as commands, each with its own RecordURL
// that downloads the caller's 440 Hz. Before, a second Record in the same
// millisecond took the first one's name and answered 303.
func TestOzekiRecordTwiceAtOnce(t *testing.T) {
	const parallel = 8
	n := ozekiNode(t, "_5XX", "Wait(60)")
	recv := startReceiver(t)
	phone := baresip.Start(t, baresip.Options{User: "twice"})
	if err := phone.Dial(n.target("500")); err != nil {
		t.Fatal(err)
	}
	id := n.activeCall()
	q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&Duration=2&CallId=" + url.QueryEscape(id) +
		"&FinishedUrl=" + url.QueryEscape(recv.url("/done"))
	// All commands leave together: each goroutine waits at the gate.
	gate := make(chan struct{})
	answers := make([]ozResponse, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			res, err := http.Get("http://" + n.srv.OzekiAddr() + q)
			if err != nil {
				answers[i] = ozResponse{Message: err.Error()}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			answers[i] = parseOz(t, string(b))
		}()
	}
	close(gate)
	wg.Wait()
	for i, r := range answers {
		if r.Code != 200 {
			t.Errorf("Record %d of %d sent at once: %d %s", i+1, parallel, r.Code, r.Message)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool {
		return recv.count("RecordCompleted") >= parallel
	}, "%d of %d RecordCompleted notifications", recv.count("RecordCompleted"), parallel)
	recv.mu.Lock()
	posts := append([]recvPost(nil), recv.posts...)
	recv.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range posts {
		f := p.Form
		if f.Get("NotificationName") != "RecordCompleted" {
			continue
		}
		if f.Get("CallId") != id || f.Get("Reason") != "duration" {
			t.Fatalf("RecordCompleted fields %v", f)
		}
		u := f.Get("RecordURL")
		if seen[u] {
			t.Fatalf("two recordings share RecordURL %s", u)
		}
		seen[u] = true
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("RecordURL %s: HTTP %d", u, res.StatusCode)
		}
		pcm := decodeRecording(t, data, "wav")
		if len(pcm) < 8000 || !dominant(pcm, 440, 1000) {
			t.Fatalf("recording %s: %d samples, 440 Hz %.0f, 1000 Hz %.0f; want at least 1 s of baresip's 440 Hz",
				u, len(pcm), goertzel(pcm, 440), goertzel(pcm, 1000))
		}
	}
	if len(seen) != parallel {
		t.Fatalf("%d distinct recordings, want %d", len(seen), parallel)
	}
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatalf("the call ended with its recordings: %v", err)
	}
}
