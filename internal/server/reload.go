package server

import (
	"fmt"
	"slices"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/dialplan"
)

// Reload applies what can change safely while calls are up: the dialplan
// (calls that arrive from now on are routed by the new one; calls in
// progress keep theirs) and the ARI users. It returns what it did and the
// settings that changed but need a restart; a dialplan that does not
// compile changes nothing.
func (s *Server) Reload(cfg config.Config) (did []string, restart []string, err error) {
	plan, err := dialplan.CompileChecked(cfg.Rules(), call.AppChecker(call.CheckEnv{RecordingsDir: cfg.RecordingsDir()}))
	if err != nil {
		return nil, nil, fmt.Errorf("dialplan: %w", err)
	}
	s.calls.SetPlan(plan)
	did = append(did, fmt.Sprintf("dialplan: %d routes", len(cfg.Dialplan)))
	s.ari.SetUsers(cfg.ARICredentials())
	did = append(did, fmt.Sprintf("ari users: %d", len(cfg.ARICredentials())))
	old := s.cfg
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"sip.listen", old.SIP.Listen != cfg.SIP.Listen},
		{"sip.transports", !slices.Equal(old.SIP.Transports, cfg.SIP.Transports)},
		{"http.listen", old.HTTP.Listen != cfg.HTTP.Listen},
		{"data_dir", old.DataDir != cfg.DataDir},
		{"rtp.port_min/port_max", old.RTP.PortMin != cfg.RTP.PortMin || old.RTP.PortMax != cfg.RTP.PortMax},
		{"rtp.codecs", !slices.Equal(old.RTP.Codecs, cfg.RTP.Codecs)},
		{"rtp.timeout_seconds", old.RTP.TimeoutSeconds != cfg.RTP.TimeoutSeconds},
		{"database", old.Catalog.Database != cfg.Catalog.Database},
	} {
		if c.changed {
			restart = append(restart, c.key)
		}
	}
	return did, restart, nil
}
