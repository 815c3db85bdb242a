package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Scenario p: a trunk (loadgen's caller phone) dials policyDID, which
// rings the user policyExten, whose phone is loadgen's callee.
const (
	policyDID      = "2100"
	policyExten    = "1100"
	policySIPUser  = "callee"
	policySIPPass  = "callee-secret"
	policyAdmin    = "loadgen"
	policyAdminPwd = "loadgen-admin"
)

// policyConfig is the server configuration scenario p adds: the trunk at
// the caller phone's port, an admin to create the user, and stereo
// policy recordings named under policy/.
func policyConfig(callerPort int) string {
	return fmt.Sprintf(`trunks:
  - name: loadgen
    address: 127.0.0.1
    port: %d
    dids: {%q: %q}
wazo:
  admins: [{name: %s, password: %s}]
call_recording:
  filename_template: "policy/{{ srcnum }}-{{ dstnum }}-{{ timestamp }}"
  filename_extension: wav
  stereo: true
`, callerPort, policyDID, policyExten, policyAdmin, policyAdminPwd)
}

// setupPolicyUser creates the user through the confd API (incoming
// external calls recorded) and registers the callee phone as that user.
func setupPolicyUser(ctx context.Context, httpBase, sipAddr string, calleePort int) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", httpBase+"/api/auth/0.1/token", strings.NewReader(`{"expiration":3600}`))
	req.SetBasicAuth(policyAdmin, policyAdminPwd)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	var tok struct {
		Data struct{ Token string } `json:"data"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		return fmt.Errorf("login: %d %v", res.StatusCode, err)
	}
	body := fmt.Sprintf(`{"firstname":"Callee","exten":%q,"context":"default","sip_username":%q,"sip_password":%q,`+
		`"call_record_incoming_external_enabled":true}`, policyExten, policySIPUser, policySIPPass)
	req, _ = http.NewRequestWithContext(ctx, "POST", httpBase+"/api/confd/1.1/users", strings.NewReader(body))
	req.Header.Set("X-Auth-Token", tok.Data.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != 200 && res.StatusCode != 201 {
		return fmt.Errorf("create user: %d", res.StatusCode)
	}

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("loadgen"))
	if err != nil {
		return err
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		return err
	}
	host, portStr, _ := strings.Cut(sipAddr, ":")
	port, _ := strconv.Atoi(portStr)
	var to sip.Uri
	if err := sip.ParseUri("sip:"+policySIPUser+"@"+sipAddr, &to); err != nil {
		return err
	}
	reg := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
	reg.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	reg.AppendHeader(from)
	reg.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@127.0.0.1:%d>", policySIPUser, calleePort)))
	reg.AppendHeader(sip.NewHeader("Expires", "3600"))
	r, err := client.Do(ctx, reg)
	if err == nil && r.StatusCode == 401 {
		r, err = client.DoDigestAuth(ctx, reg, r, sipgo.DigestAuth{Username: policySIPUser, Password: policySIPPass})
	}
	if err != nil {
		return fmt.Errorf("REGISTER: %w", err)
	}
	if r.StatusCode != 200 {
		return fmt.Errorf("REGISTER: %d %s", r.StatusCode, r.Reason)
	}
	return nil
}

// waitPolicyRecordings waits until there is a recording per answered call
// under dir, each with its final WAV header, and says how many are not.
func waitPolicyRecordings(ctx context.Context, dir string, results []callResult, limit time.Duration) int {
	want := 0
	for _, r := range results {
		if r.answered {
			want++
		}
	}
	deadline := time.Now().Add(limit)
	for {
		done := 0
		files, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
		for _, f := range files {
			if w, err := readWAV(f); err == nil && w.headerBytes == w.dataBytes && w.dataBytes > 0 {
				done++
			}
		}
		if done >= want || time.Now().After(deadline) || ctx.Err() != nil {
			return max(0, want-done)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
