package ari

import (
	"os"
	"os/user"
	"runtime"
	"slices"
	"time"

	"github.com/tapedeck/tapedeck/internal/event"
)

func (s *Server) asteriskResource() *Resource {
	return &Resource{
		Name:        "asterisk",
		Description: "Asterisk resources",
		Models:      []string{"AsteriskInfo", "BuildInfo", "SystemInfo", "ConfigInfo", "SetId", "StatusInfo", "AsteriskPing", "Variable"},
		Ops: []Op{
			{Method: "GET", Path: "/asterisk/info", Nickname: "getInfo", Summary: "Gets Asterisk system information.", Returns: "AsteriskInfo",
				Params:  []Param{{Name: "only", In: "query", Type: "string", Multi: true, Allowed: []string{"build", "system", "config", "status"}, Description: "Filter information returned"}},
				Handler: func(r *Request) (any, error) { return s.info(r.List("only")), nil }},
			{Method: "GET", Path: "/asterisk/ping", Nickname: "ping", Summary: "Response pong message.", Returns: "AsteriskPing",
				Handler: func(r *Request) (any, error) {
					return map[string]string{"asterisk_id": s.bus.EntityID(), "ping": "pong", "timestamp": event.Time(time.Now()).String()}, nil
				}},
		},
	}
}

func (s *Server) info(only []string) map[string]any {
	want := func(k string) bool { return len(only) == 0 || slices.Contains(only, k) }
	out := map[string]any{}
	if want("build") {
		host, _ := os.Hostname()
		u := ""
		if cu, err := user.Current(); err == nil {
			u = cu.Username
		}
		out["build"] = map[string]string{
			"os": runtime.GOOS, "kernel": "", "options": runtime.Version(), "machine": runtime.GOARCH,
			"date": "", "user": u + "@" + host,
		}
	}
	if want("system") {
		out["system"] = map[string]string{"version": s.opts.Version, "entity_id": s.bus.EntityID()}
	}
	if want("config") {
		name := s.opts.SystemName
		out["config"] = map[string]any{
			"name": name, "default_language": "en",
			"setid": map[string]string{"user": "", "group": ""},
		}
	}
	if want("status") {
		t := event.Time(s.opts.StartedAt)
		out["status"] = map[string]any{"startup_time": t, "last_reload_time": t}
	}
	return out
}
