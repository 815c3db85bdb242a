package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
	"github.com/tapedeck/tapedeck/internal/users"
)

// staticDir is a users directory held in memory (the users store's
// stand-in until it is wired).
type staticDir struct {
	mu    sync.Mutex
	users []*call.DirUser
}

func (d *staticDir) UserBySIPUsername(_ context.Context, name string) (*call.DirUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if u.SIPUsername == name {
			c := *u
			return &c, nil
		}
	}
	return nil, call.ErrNoUser
}

func (d *staticDir) UserByExten(_ context.Context, ctx, exten string) (*call.DirUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if u.Exten == exten && (ctx == "" || u.Context == ctx) {
			c := *u
			return &c, nil
		}
	}
	return nil, call.ErrNoUser
}

func wazoUsers(exts ...string) *staticDir {
	d := &staticDir{}
	for _, e := range exts {
		d.users = append(d.users, &call.DirUser{UUID: "uuid-" + e, TenantUUID: "tenant-1", Firstname: "User", Lastname: e,
			Exten: e, Context: "default", SIPUsername: "sip" + e, SIPPassword: "pw-" + e})
	}
	return d
}

func startPBX(t *testing.T, dir *staticDir) *node {
	// baresip 1.0 (libre 1.x) knows only MD5 and fails the whole
	// REGISTER ("Function not implemented") when any challenge names
	// another algorithm: the operator offers MD5 alone.
	return startNodeWith(t, func(s *server.Server) { s.SetDirectory(dir) }, func(c *config.Config) {
		c.SIP.DigestAlgorithms = []string{"MD5"}
	})
}

// TestRegisterBaresip: real phones register with digest authentication
// (baresip answers the SHA-256 challenge); a wrong password binds nothing
// and is counted.
func TestRegisterBaresip(t *testing.T) {
	n := startPBX(t, wazoUsers("1001", "1002"))
	reg := n.srv.Registrar()
	good := baresip.Start(t, baresip.Options{User: "sip1001", Registrar: n.srv.SIPAddr(), Password: "pw-1001"})
	bad := baresip.Start(t, baresip.Options{User: "sip1002", Registrar: n.srv.SIPAddr(), Password: "wrong"})
	err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return len(reg.Contacts("sip1001")) == 1 })
	if err != nil {
		t.Fatalf("baresip did not register: %v", reg.Contacts("sip1001"))
	}
	c := reg.Contacts("sip1001")[0]
	if !strings.Contains(c.Contact, fmt.Sprintf(":%d", good.SIPPort)) || c.UserAgent == "" {
		t.Fatalf("binding %+v, want the phone's contact on port %d", c, good.SIPPort)
	}
	if left := time.Until(c.Expires); left < 500*time.Second || left > 601*time.Second {
		t.Fatalf("granted %v, want the phone's 600 s", left)
	}
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return n.srv.SIPStats().AuthFailures > 0 }); err != nil {
		t.Fatal("the wrong password was not counted as a failure")
	}
	if cs := reg.Contacts("sip1002"); len(cs) != 0 {
		t.Fatalf("a phone with a wrong password is bound: %v", cs)
	}
	_ = bad
}

// registeredPhone starts baresip as the user of exten, registered with
// the node, its microphone a tone of hz, and waits for its registration.
func registeredPhone(t *testing.T, n *node, exten string, hz float64, answer string) *baresip.Phone {
	t.Helper()
	mic := filepath.Join(t.TempDir(), "mic"+exten+".wav")
	if err := testutil.WriteToneWAV(mic, 8000, hz, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	p := baresip.Start(t, baresip.Options{User: "sip" + exten, Registrar: n.srv.SIPAddr(), Password: "pw-" + exten,
		AudioFile: mic, AnswerMode: answer})
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		return len(n.srv.Registrar().Contacts("sip"+exten)) > 0
	}); err != nil {
		t.Fatalf("%s did not register", exten)
	}
	return p
}

func (n *node) userURI(exten string) string { return "sip:" + exten + "@" + n.srv.SIPAddr() }

// TestUserCallsUser: registered baresip phones call each other by
// extension: the INVITE is authenticated, the callee's phone rings, the
// caller hears ringing, the answer connects both (audio both ways) and
// the callee hanging up ends the caller's call too. An application
// subscribed to every channel hears ChannelDialplan for the caller's
// channel entering Dial and for the callee's entering AppDial, as from
// Asterisk's app_dial.
func TestUserCallsUser(t *testing.T) {
	n := startPBX(t, wazoUsers("1001", "1002", "1003"))
	all := n.connect("watcher&subscribeAll=true")
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	if err := alice.Dial(n.userURI("1002")); err != nil {
		t.Fatal(err)
	}
	var apps []string
	for len(apps) < 2 {
		d := all.skipTo("ChannelDialplan", 10*time.Second)
		apps = append(apps, fmt.Sprint(d["dialplan_app"], " ", d["dialplan_app_data"] != ""))
		if d["dialplan_app"] == "AppDial" && d["dialplan_app_data"] != "(Outgoing Line)" {
			t.Errorf("AppDial's data %v", d["dialplan_app_data"])
		}
	}
	if got := strings.Join(apps, ", "); got != "Dial true, AppDial true" {
		t.Errorf("ChannelDialplan for %s, want the caller's Dial then the callee's AppDial", got)
	}
	in, err := bob.WaitEvent("CALL_INCOMING", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if peer, _ := in["peeruri"].(string); !strings.Contains(peer, "1001") {
		t.Fatalf("bob sees the call from %q, want alice's extension 1001", peer)
	}
	if _, err := alice.WaitEvent("CALL_RINGING", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := bob.Accept(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*baresip.Phone{alice, bob} {
		if _, err := p.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Audio flows both ways through tapedeck: each leg receives RTP.
	err = testutil.Poll(10*time.Second, 50*time.Millisecond, func() bool {
		chans := n.srv.Calls().Channels()
		if len(chans) != 2 {
			return false
		}
		for _, c := range chans {
			st, err := n.srv.Calls().RTPStats(call.ChannelID(c.ID))
			if err != nil || st.Received < 50 || st.Sent < 50 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("no audio both ways: %v", n.srv.Calls().Channels())
	}
	if err := bob.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
		t.Fatal("the callee hung up but the caller's call goes on: ", err)
	}
	if err := testutil.Poll(5*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 }); err != nil {
		t.Fatalf("channels left: %v", n.srv.Calls().Channels())
	}
}

// TestUserCallOutcomes: what the caller gets when the call does not
// connect: no phone registered → 480, the callee rejects → 486, no such
// extension → 404, and the caller giving up cancels the callee's ringing.
func TestUserCallOutcomes(t *testing.T) {
	n := startPBX(t, wazoUsers("1001", "1002", "1003"))
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	closed := func(want string) {
		t.Helper()
		ev, err := alice.WaitEvent("CALL_CLOSED", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ev["param"]); !strings.Contains(got, want) {
			t.Fatalf("alice's call closed with %q, want %q", got, want)
		}
	}
	if err := alice.Dial(n.userURI("1003")); err != nil {
		t.Fatal(err)
	}
	closed("480")
	if err := alice.Dial(n.userURI("4711")); err != nil {
		t.Fatal(err)
	}
	closed("404")

	if err := alice.Dial(n.userURI("1002")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent("CALL_INCOMING", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := bob.Hangup(); err != nil { // rejects the ringing call
		t.Fatal(err)
	}
	closed("486")
	if _, err := bob.WaitEvent("CALL_CLOSED", 5*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := alice.Dial(n.userURI("1002")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent("CALL_INCOMING", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent("CALL_RINGING", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
		t.Fatal("the caller gave up but the callee's phone still rings: ", err)
	}
	if err := testutil.Poll(5*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 }); err != nil {
		t.Fatalf("channels left: %v", n.srv.Calls().Channels())
	}
}

// TestUserCallNeedsAuth: an INVITE to a user's extension from a phone that
// cannot authenticate is refused and calls nobody.
func TestUserCallNeedsAuth(t *testing.T) {
	n := startPBX(t, wazoUsers("1001", "1002"))
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	mallory := baresip.Start(t, baresip.Options{User: "sip1001", Password: "guess"})
	if err := mallory.Dial(n.userURI("1002")); err != nil {
		t.Fatal(err)
	}
	ev, err := mallory.WaitEvent("CALL_CLOSED", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ev["param"]); !strings.Contains(got, "40") {
		t.Fatalf("unauthenticated call closed with %q, want 401/403", got)
	}
	if evs := bob.Events(); len(evs) != 0 {
		for _, e := range evs {
			if e["type"] == "CALL_INCOMING" {
				t.Fatal("an unauthenticated caller rang bob")
			}
		}
	}
}

// connectCall has from call to's extension, to answer, and waits until
// audio flowed both ways for about two seconds.
func connectCall(t *testing.T, n *node, from, to *baresip.Phone, exten string) {
	t.Helper()
	if err := from.Dial(n.userURI(exten)); err != nil {
		t.Fatal(err)
	}
	if _, err := to.WaitEvent("CALL_INCOMING", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := to.Accept(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*baresip.Phone{from, to} {
		if _, err := p.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	err := testutil.Poll(15*time.Second, 50*time.Millisecond, func() bool {
		chans := n.srv.Calls().Channels()
		if len(chans) != 2 {
			return false
		}
		for _, c := range chans {
			st, err := n.srv.Calls().RTPStats(call.ChannelID(c.ID))
			if err != nil || st.Received < 100 || st.Sent < 100 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("no audio both ways: %v", n.srv.Calls().Channels())
	}
}

// hangupAll has p hang up and waits until the node has no channel left.
func hangupAll(t *testing.T, n *node, p *baresip.Phone) {
	t.Helper()
	if err := p.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 }); err != nil {
		t.Fatalf("channels left: %v", n.srv.Calls().Channels())
	}
}

// TestUserCallRecordedByPolicy: a call to a user whose incoming internal
// calls are recorded leaves one mixed recording named as Wazo's default
// template, holding both voices (440 Hz from the caller, 1000 Hz from the
// callee), catalogued as a policy recording with caller and callee; a
// call between users without the flags leaves none.
func TestUserCallRecordedByPolicy(t *testing.T) {
	dir := wazoUsers("1001", "1002", "1003")
	dir.users[1].CallRecordIncomingInternal = true
	n := startPBX(t, dir)
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	carol := registeredPhone(t, n, "1003", 1000, "manual")

	connectCall(t, n, alice, bob, "1002")
	hangupAll(t, n, alice)
	files, _ := filepath.Glob(filepath.Join(n.recDir(), "user-1001-1002-*.wav"))
	if len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(n.recDir(), "*"))
		t.Fatalf("recordings %v, want one user-1001-1002-<timestamp>.wav", all)
	}
	name := strings.TrimSuffix(filepath.Base(files[0]), ".wav")
	var row struct{ status, source, caller, called, tenant, direction, owners string }
	err := testutil.Poll(10*time.Second, 50*time.Millisecond, func() bool {
		r, err := n.srv.Catalog().Stored(context.Background(), name)
		if err != nil {
			return false
		}
		row.status, row.source, row.caller, row.called = string(r.Status), r.Source, r.CallerNumber, r.CalledNumber
		row.tenant, row.direction, row.owners = r.TenantUUID, r.Direction, r.Owners
		return row.status == "completed"
	})
	if err != nil || row.source != "policy" || row.caller != "1001" || row.called != "1002" ||
		row.tenant != "tenant-1" || row.direction != "internal" || row.owners != "uuid-1002" {
		t.Fatalf("catalog row %+v (%v), want completed policy 1001 -> 1002, tenant-1, internal, owned by uuid-1002", row, err)
	}
	rate, pcm := readWAV(t, files[0])
	if rate != 8000 || len(pcm) < 8000 {
		t.Fatalf("recording: %d Hz, %d samples", rate, len(pcm))
	}
	mid := pcm[len(pcm)/4 : len(pcm)*3/4]
	p440, p1000, p700 := goertzel(mid, 440), goertzel(mid, 1000), goertzel(mid, 700)
	if p440 < 20*p700 || p1000 < 20*p700 {
		t.Fatalf("the recording does not hold both voices: 440 Hz %.0f, 1000 Hz %.0f, 700 Hz (neither) %.0f", p440, p1000, p700)
	}

	// Nobody's flags ask for carol's calls.
	connectCall(t, n, alice, carol, "1003")
	hangupAll(t, n, carol)
	if files, _ := filepath.Glob(filepath.Join(n.recDir(), "user-1001-1003-*")); len(files) != 0 {
		t.Fatalf("a call nobody's flags ask for was recorded: %v", files)
	}
}

// startStorePBX is a node whose users live in its catalog database (the
// users store behind the confd API); it creates the given users.
func startStorePBX(t *testing.T, us ...users.User) (*node, []users.User) {
	t.Helper()
	return startStorePBXWith(t, nil, us...)
}

// startStorePBXWith is startStorePBX with the configuration changed by
// mutate first.
func startStorePBXWith(t *testing.T, mutate func(*config.Config), us ...users.User) (*node, []users.User) {
	t.Helper()
	n := startNodeWith(t, nil, func(c *config.Config) {
		c.SIP.DigestAlgorithms = []string{"MD5"}
		if mutate != nil {
			mutate(c)
		}
	})
	var out []users.User
	for _, u := range us {
		u.TenantUUID = "tenant-1"
		u.SIPUsername, u.SIPPassword = "sip"+u.Exten, "pw-"+u.Exten
		c, err := n.srv.Users().Create(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return n, out
}

func flags(t *testing.T, n *node, uuid string) [5]bool {
	t.Helper()
	u, err := n.srv.Users().Get(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return [5]bool{u.CallRecordOutgoingExternal, u.CallRecordOutgoingInternal, u.CallRecordIncomingExternal, u.CallRecordIncomingInternal, u.OnlineCallRecord}
}

// TestFeatureCallRecordToggle: a registered user dialling *26 (the
// callrecord feature) flips their four call recording flags in the users
// store, hears a tone and is hung up on; once the feature is disabled,
// *26 is not routable (404).
func TestFeatureCallRecordToggle(t *testing.T) {
	n, us := startStorePBX(t, users.User{Firstname: "Alice", Exten: "1001"})
	alice := registeredPhone(t, n, "1001", 440, "manual")
	toggle := func() string {
		t.Helper()
		if err := alice.Dial(n.userURI("*26")); err != nil {
			t.Fatal(err)
		}
		ev, err := alice.WaitEvent("CALL_CLOSED", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ev["param"])
	}
	toggle()
	if f := flags(t, n, us[0].UUID); f != [5]bool{true, true, true, true, false} {
		t.Fatalf("after *26: flags %v, want the four call_record flags on", f)
	}
	if _, err := alice.WaitEvent("CALL_ESTABLISHED", time.Second); err != nil {
		t.Fatal("*26 was not answered (no audible confirmation): ", err)
	}
	toggle()
	if f := flags(t, n, us[0].UUID); f != [5]bool{} {
		t.Fatalf("after a second *26: flags %v, want all off", f)
	}
	fs, err := n.srv.Users().Features(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Feature == "callrecord" {
			f.Enabled = false
			if err := n.srv.Users().UpdateFeature(context.Background(), f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := toggle(); !strings.Contains(got, "404") {
		t.Fatalf("disabled *26: call closed with %q, want 404", got)
	}
	if f := flags(t, n, us[0].UUID); f != [5]bool{} {
		t.Fatalf("a disabled *26 changed the flags: %v", f)
	}
}

// TestFeatureOnlineRecord: *3 during a connected call starts and stops an
// on-demand recording auto-<timestamp>-<TOUCH_MIXMONITOR>.wav (the
// variable set by the dialplan route of the caller's call) for a user with
// online_call_record_enabled, and the other party receives none of the
// digits; for a user without it, *3 records nothing and passes through.
func TestFeatureOnlineRecord(t *testing.T) {
	n, _ := startStorePBXWith(t, func(c *config.Config) {
		c.Dialplan = append(c.Dialplan, config.Route{Exten: "_100X", App: "Dial(${EXTEN})",
			Variables: map[string]string{"TOUCH_MIXMONITOR": "pcm"}})
	}, users.User{Firstname: "Alice", Exten: "1001", OnlineCallRecord: true}, users.User{Firstname: "Bob", Exten: "1002"})
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	connectCall(t, n, alice, bob, "1002")
	autoFiles := func() []string {
		f, _ := filepath.Glob(filepath.Join(n.recDir(), "auto-*"))
		return f
	}
	if err := alice.SendDTMF("*3"); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return len(autoFiles()) == 1 }); err != nil {
		t.Fatalf("*3 made no on-demand recording: %v", autoFiles())
	}
	if f := filepath.Base(autoFiles()[0]); !strings.HasPrefix(f, "auto-") || !strings.HasSuffix(f, "-pcm.wav") {
		t.Fatalf("on-demand recording %q, want auto-<timestamp>-pcm.wav", f)
	}
	if err := alice.SendDTMF("*3"); err != nil { // stops it
		t.Fatal(err)
	}
	// Bob, who may not record, dials *3: nothing is recorded, and the
	// digits reach alice (a marker that they went through the bridge).
	if err := bob.SendDTMF("*3"); err != nil {
		t.Fatal(err)
	}
	got, err := alice.WaitDTMF(2, 10*time.Second)
	if err != nil || got != "*3" {
		t.Fatalf("alice received %q (%v), want bob's *3 passed through", got, err)
	}
	if f := autoFiles(); len(f) != 1 {
		t.Fatalf("on-demand recordings %v, want still one", f)
	}
	for _, ev := range bob.Events() {
		if ev["type"] == "CALL_DTMF_START" {
			t.Fatalf("bob received alice's feature code digits: %v", ev)
		}
	}
	hangupAll(t, n, alice)
}

// TestPolicyRecordingTemplateStereo: with the seed's first example
// (call_recording.filename_template "{{ tenant_uuid }}/{{ utc_time
// }}-{{ srcnum }}-{{ dstnum }}") and stereo, the recording lands in the
// tenant's directory under that name, the caller's 440 Hz on the left
// and the callee's 1000 Hz on the right.
func TestPolicyRecordingTemplateStereo(t *testing.T) {
	dir := wazoUsers("1001", "1002")
	dir.users[0].CallRecordOutgoingInternal = true
	n := startNodeWith(t, func(s *server.Server) { s.SetDirectory(dir) }, func(c *config.Config) {
		c.SIP.DigestAlgorithms = []string{"MD5"}
		c.CallRecording.FilenameTemplate = "{{ tenant_uuid }}/{{ utc_time }}-{{ srcnum }}-{{ dstnum }}"
		c.CallRecording.Stereo = true
	})
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	connectCall(t, n, alice, bob, "1002")
	hangupAll(t, n, bob)
	files, _ := filepath.Glob(filepath.Join(n.recDir(), "tenant-1", "*-1001-1002.wav"))
	if len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(n.recDir(), "*", "*"))
		t.Fatalf("recordings %v, want tenant-1/<utc_time>-1001-1002.wav", all)
	}
	err := testutil.Poll(10*time.Second, 50*time.Millisecond, func() bool {
		r, err := n.srv.Catalog().Stored(context.Background(), "tenant-1/"+strings.TrimSuffix(filepath.Base(files[0]), ".wav"))
		return err == nil && r.Status == "completed" && r.Channels == 2
	})
	if err != nil {
		t.Fatal("the stereo recording is not catalogued as completed with 2 channels")
	}
	left, right := readStereoWAV(t, files[0])
	l, r := left[len(left)/4:len(left)*3/4], right[len(right)/4:len(right)*3/4]
	if !dominant(l, 440, 1000) || !dominant(r, 1000, 440) {
		t.Fatalf("left 440/1000 Hz: %.0f/%.0f, right: %.0f/%.0f; want the caller left, the callee right",
			goertzel(l, 440), goertzel(l, 1000), goertzel(r, 440), goertzel(r, 1000))
	}
}

// TestARIEndpoints: ARI's endpoints are the users' SIP phones, online
// while registered, with the channels of their calls.
func TestARIEndpoints(t *testing.T) {
	n, _ := startStorePBX(t, users.User{Firstname: "Alice", Exten: "1001"}, users.User{Firstname: "Bob", Exten: "1002"},
		users.User{Firstname: "Carol", Exten: "1003"})
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	connectCall(t, n, alice, bob, "1002")
	var eps []struct {
		Technology string   `json:"technology"`
		Resource   string   `json:"resource"`
		State      string   `json:"state"`
		ChannelIDs []string `json:"channel_ids"`
	}
	if err := json.Unmarshal(n.mustDo("GET", "/endpoints", 200), &eps); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range eps {
		got[e.Technology+"/"+e.Resource] = fmt.Sprintf("%s %d", e.State, len(e.ChannelIDs))
	}
	want := map[string]string{"PJSIP/sip1001": "online 1", "PJSIP/sip1002": "online 1", "PJSIP/sip1003": "offline 0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("endpoints %v, want %v", got, want)
	}
	if b := string(n.mustDo("GET", "/endpoints/PJSIP/sip1003", 200)); !strings.Contains(b, `"state":"offline"`) || !strings.Contains(b, `"channel_ids":[]`) {
		t.Fatalf("GET /endpoints/PJSIP/sip1003: %s", b)
	}
	n.mustDo("GET", "/endpoints/PJSIP/nobody", 404)
	hangupAll(t, n, alice)
}

// TestRegistrationsSurviveRestart: the location store is the catalog
// database, so a node started on it knows the phones registered with the
// node before it.
func TestRegistrationsSurviveRestart(t *testing.T) {
	data := t.TempDir()
	n, _ := startStorePBXWith(t, func(c *config.Config) { c.DataDir = data }, users.User{Firstname: "Alice", Exten: "1001"})
	alice := registeredPhone(t, n, "1001", 440, "manual")
	n.srv.Registrar().Flush()
	n.srv.Close()
	n2 := startNodeWith(t, nil, func(c *config.Config) { c.DataDir = data })
	cs := n2.srv.Registrar().Contacts("sip1001")
	if len(cs) != 1 || !strings.Contains(cs[0].Contact, fmt.Sprintf(":%d", alice.SIPPort)) {
		t.Fatalf("after the restart: %v, want alice's phone", cs)
	}
}
