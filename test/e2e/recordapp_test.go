package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// TestRecordApplication: the dialplan's Record(name,format) answers and
// records the caller until hangup, with no ARI application.
func TestRecordApplication(t *testing.T) {
	n := startNode(t, withRoute("2001", "Record(calls/${EXTEN}-${UNIQUEID},wav)"))
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, n.target("2001"), sipua.CallOptions{})
	must(t, err)
	src := sweep(8000 * 2)
	must(t, call.SendAudio(ctx, src))
	must(t, call.Hangup(ctx))
	var path string
	pollFor(t, 5*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(n.recDir(), "calls"))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "2001-") && strings.HasSuffix(e.Name(), ".wav") {
				path = filepath.Join(n.recDir(), "calls", e.Name())
			}
		}
		return path != "" && n.srv.Calls().Count() == 0
	}, "the recording file and the end of the call")
	_, got := readWAV(t, path)
	if d := len(got) - len(src); d < -160 || d > 160 {
		t.Fatalf("recorded %d samples, sent %d", len(got), len(src))
	}
	want := g711(src)
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			t.Fatalf("sample %d differs", i)
		}
	}
	// The catalog has it, from the dialplan ("policy").
	acc := defaultAccount(t, n)
	_, body := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	if !strings.Contains(string(body), `"status":"completed"`) {
		t.Fatalf("catalog: %s", body)
	}
}
