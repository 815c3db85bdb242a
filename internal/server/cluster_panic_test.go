package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/event"
)

// panickingARI is a node's ARI whose handler panics on /ari/boom.
type panickingARI struct{}

func (panickingARI) ServeTrusted(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ari/boom" {
		panic("handler bug")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// TestClusterRequestPanicFailsOnlyIt: a request relayed over NATS runs the
// ARI handler outside net/http's recover; a panic there answers 500 to
// that request, is counted, and the node goes on answering the next one.
// Without the containment the panic ends the test process.
func TestClusterRequestPanicFailsOnlyIt(t *testing.T) {
	nc := natsConn(t)
	run := runID()
	prefix := "p" + run + ".ari."
	node := "pn" + run
	c, err := startCluster(nc, prefix, event.NewBus(node), node, node, panickingARI{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ask := func(path string) proxyResponse {
		t.Helper()
		b, _ := json.Marshal(proxyRequest{Kind: "http", HTTP: &relayedHTTP{Method: "GET", Path: path}})
		m, err := nc.Request(prefix+"get.app."+node, b, 5*time.Second)
		if err != nil {
			t.Fatalf("request %s: %v", path, err)
		}
		var res proxyResponse
		if err := json.Unmarshal(m.Data, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	before := contain.Count("cluster request")
	if res := ask("/ari/boom"); res.HTTP == nil || res.HTTP.Status != 500 {
		t.Fatalf("the panicking request answered %+v, want HTTP 500", res)
	}
	if got := contain.Count("cluster request"); got != before+1 {
		t.Errorf("panics counted at cluster request: %v, want %v", got, before+1)
	}
	if res := ask("/ari/ok"); res.HTTP == nil || res.HTTP.Status != 200 || string(res.HTTP.Body) != `{"ok":true}` {
		t.Fatalf("the next request answered %+v, want 200 with the handler's body", res)
	}
}
