package ari

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
)

func newTestServer(t *testing.T) *Server {
	t.Helper()
	bus := event.NewBus("00:11:22:33:44:55")
	return New(Options{Users: []config.ARIUser{{Name: "u", Password: "p"}}, Bus: bus, Calls: call.NewManager(call.Options{Bus: bus})})
}

func get(t *testing.T, s *Server, path string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("GET", "http://tapedeck.example:8088"+path, nil)
	req.SetBasicAuth("u", "p")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// TestSwaggerGeneratedFromRoutes: resources.json lists every resource
// ari-client looks up with an absolute basePath; each declaration carries
// exactly the operations of the route table.
func TestSwaggerGeneratedFromRoutes(t *testing.T) {
	s := newTestServer(t)
	code, listing := get(t, s, "/ari/api-docs/resources.json")
	if code != 200 || listing["basePath"] != "http://tapedeck.example:8088/ari" {
		t.Fatalf("resources.json: %d %v", code, listing["basePath"])
	}
	var names []string
	for _, a := range listing["apis"].([]any) {
		p := a.(map[string]any)["path"].(string)
		name := strings.TrimSuffix(strings.TrimPrefix(p, "/api-docs/"), ".{format}")
		names = append(names, name)
	}
	want := "asterisk endpoints channels bridges recordings sounds playbacks deviceStates mailboxes events applications"
	if strings.Join(names, " ") != want {
		t.Fatalf("resources %v, want %s", names, want)
	}
	for _, res := range s.Resources() {
		code, decl := get(t, s, "/ari/api-docs/"+res.Name+".json")
		if code != 200 || decl["basePath"] != "http://tapedeck.example:8088/ari" {
			t.Fatalf("%s.json: %d %v", res.Name, code, decl["basePath"])
		}
		ops := map[string]bool{}
		for _, api := range decl["apis"].([]any) {
			a := api.(map[string]any)
			for _, op := range a["operations"].([]any) {
				o := op.(map[string]any)
				ops[o["httpMethod"].(string)+" "+a["path"].(string)+" "+o["nickname"].(string)] = true
			}
		}
		if len(ops) != len(res.Ops) {
			t.Errorf("%s: %d operations in the declaration, %d routes", res.Name, len(ops), len(res.Ops))
		}
		for _, op := range res.Ops {
			if !ops[op.Method+" "+op.Path+" "+op.Nickname] {
				t.Errorf("%s: %s %s (%s) missing from the declaration", res.Name, op.Method, op.Path, op.Nickname)
			}
		}
	}
	// Spot checks of what ari-client reads.
	_, ch := get(t, s, "/ari/api-docs/channels.json")
	raw, _ := json.Marshal(ch)
	for _, want := range []string{`"nickname":"answer"`, `"path":"/channels/{channelId}/answer"`, `"paramType":"path"`, `"responseClass":"List[Channel]"`, `"allowMultiple":true`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("channels.json lacks %s", want)
		}
	}
}

// TestEventModels: events.json declares every event type tapedeck sends,
// with typed object properties so ari-client builds instances.
func TestEventModels(t *testing.T) {
	s := newTestServer(t)
	_, ev := get(t, s, "/ari/api-docs/events.json")
	models := ev["models"].(map[string]any)
	for _, typ := range call.EventTypes {
		m, ok := models[typ].(map[string]any)
		if !ok {
			t.Errorf("event %s is sent but not declared in events.json", typ)
			continue
		}
		props := m["properties"].(map[string]any)
		if strings.HasPrefix(typ, "Channel") || strings.HasPrefix(typ, "Stasis") {
			if c, ok := props["channel"].(map[string]any); !ok || c["type"] != "Channel" {
				t.Errorf("%s.channel is not of type Channel: %v", typ, props["channel"])
			}
		}
	}
	if _, ok := models["ApplicationReplaced"]; !ok {
		t.Error("ApplicationReplaced not declared")
	}
	if p := models["ChannelDtmfReceived"].(map[string]any)["properties"].(map[string]any); p["duration_ms"].(map[string]any)["type"] != "int" {
		t.Error("duration_ms not int")
	}
}

// TestDocsNeedAuthAndGET: api-docs are behind auth and GET-only.
func TestDocsNeedAuthAndGET(t *testing.T) {
	s := newTestServer(t)
	req := httptest.NewRequest("GET", "/ari/api-docs/resources.json", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("unauthenticated docs: %d", rec.Code)
	}
	req = httptest.NewRequest("POST", "/ari/api-docs/resources.json", nil)
	req.SetBasicAuth("u", "p")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST docs: %d", rec.Code)
	}
	if code, _ := get(t, s, "/ari/api-docs/nothing.json"); code != 404 {
		t.Errorf("unknown declaration: %d", code)
	}
}

// TestEndpointsByTech: PJSIP without users is an empty list, another
// technology 404, as Asterisk answers.
func TestEndpointsByTech(t *testing.T) {
	s := newTestServer(t)
	req := httptest.NewRequest("GET", "/ari/endpoints/PJSIP", nil)
	req.SetBasicAuth("u", "p")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("PJSIP: %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("GET", "/ari/endpoints/IAX2", nil)
	req.SetBasicAuth("u", "p")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("IAX2: %d %s", rec.Code, rec.Body)
	}
}
