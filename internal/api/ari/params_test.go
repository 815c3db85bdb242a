package ari

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/event"
)

// testdata/asterisk-params.json lists, for each of Asterisk's 109 ARI
// operations ("METHOD /path"), the names of the query and body parameters
// it declares, as read from Asterisk's rest-api/api-docs/*.json (commit
// f0c1c1a7b79b, master of 2026-08-06).

// ignoredParams are the parameters Asterisk declares that an implemented
// operation accepts without its handler reading them, each with why that
// answers as Asterisk does. Anything else a handler does not read fails
// TestEveryDeclaredParamHonoured.
var ignoredParams = map[string]string{}

// TestEveryDeclaredParamHonoured: for every operation tapedeck implements,
// each parameter Asterisk declares is declared by tapedeck too and read by
// the handler when given (the handler runs to its end on a call model
// where everything succeeds), unless ignoredParams says why not.
func TestEveryDeclaredParamHonoured(t *testing.T) {
	raw, err := os.ReadFile("testdata/asterisk-params.json")
	if err != nil {
		t.Fatal(err)
	}
	var asterisk map[string][]string
	if err := json.Unmarshal(raw, &asterisk); err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus("00:11:22:33:44:55")
	s := New(Options{Bus: bus, Calls: nopCalls{}})
	// The application operations look the application up first.
	bus.Register(event.NewSubscriber("audit-applicationName", 10, false), nil)
	used := map[string]bool{}
	implemented := 0
	for _, res := range s.Resources() {
		for i := range res.Ops {
			op := &res.Ops[i]
			key := op.Method + " " + op.Path
			want, ok := asterisk[key]
			if !ok || op.Upgrade {
				continue
			}
			implemented++
			declared := map[string]*Param{}
			for j := range op.Params {
				declared[op.Params[j].Name] = &op.Params[j]
			}
			q := url.Values{}
			body := map[string]any{}
			for _, name := range want {
				p := declared[name]
				if p == nil {
					if _, justified := ignoredParams[key+" "+name]; !justified {
						t.Errorf("%s: Asterisk's parameter %s is not declared", key, name)
					}
					continue
				}
				if p.In == "body" {
					body[name] = map[string]any{"X_AUDIT": "1"}
					continue
				}
				q.Set(name, sampleValue(*p))
			}
			path := op.Path
			for _, p := range op.Params {
				if p.In == "path" {
					path = strings.ReplaceAll(path, "{"+p.Name+"}", "audit-"+p.Name)
				}
			}
			var b []byte
			if len(body) > 0 {
				b, _ = json.Marshal(body)
			}
			hr := httptest.NewRequest(op.Method, "http://tapedeck/ari"+path+"?"+q.Encode(), bytes.NewReader(b))
			if len(b) > 0 {
				hr.Header.Set("Content-Type", "application/json")
			}
			_, params, _ := s.match(path, op.Method)
			req, err := parseRequest(hr, op, params)
			if err != nil {
				t.Errorf("%s: the audit's request was refused: %v (query %s)", key, err, q.Encode())
				continue
			}
			req.read = map[string]bool{}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s: handler panicked: %v", key, p)
					}
				}()
				_, _ = op.Handler(req)
			}()
			for _, name := range want {
				why, justified := ignoredParams[key+" "+name]
				if justified {
					used[key+" "+name] = true
				}
				switch {
				case req.read[name] && justified:
					t.Errorf("%s: %s is read now; drop its entry from ignoredParams (%q)", key, name, why)
				case !req.read[name] && !justified:
					t.Errorf("%s: Asterisk's parameter %s is accepted and ignored", key, name)
				}
			}
		}
	}
	for k := range ignoredParams {
		if !used[k] {
			t.Errorf("ignoredParams has %q, which is no implemented operation's parameter", k)
		}
	}
	if implemented < 60 {
		t.Errorf("only %d operations matched Asterisk's", implemented)
	}
	t.Logf("%d of Asterisk's %d operations implemented; their parameters audited", implemented, len(asterisk))
}

// TestImplementedOperations lists what Asterisk declares and tapedeck does
// not serve, so the gap is visible in the test log.
func TestImplementedOperations(t *testing.T) {
	raw, err := os.ReadFile("testdata/asterisk-params.json")
	if err != nil {
		t.Fatal(err)
	}
	var asterisk map[string][]string
	if err := json.Unmarshal(raw, &asterisk); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Bus: event.NewBus("x"), Calls: nopCalls{}})
	have := map[string]bool{}
	for _, res := range s.Resources() {
		for _, op := range res.Ops {
			have[op.Method+" "+op.Path] = true
		}
	}
	var missing []string
	for k := range asterisk {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	t.Logf("%d operations not implemented:\n%s", len(missing), strings.Join(missing, "\n"))
}

// sampleValue is a valid value of a parameter: one of its allowed values,
// else one of its type.
func sampleValue(p Param) string {
	if len(p.Allowed) > 0 {
		return p.Allowed[len(p.Allowed)-1]
	}
	switch p.Type {
	case "int", "long":
		return "1"
	case "boolean":
		return "true"
	}
	switch p.Name {
	case "endpoint":
		return "PJSIP/alice@127.0.0.1"
	case "media":
		return "sound:hello"
	case "format":
		return "wav"
	case "recorder_format", "announcer_format":
		return "slin16"
	case "reason_code":
		return "16"
	case "states":
		return "ringing"
	}
	return "audit"
}
