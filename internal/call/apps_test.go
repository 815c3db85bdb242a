package call

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/dialplan"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// Stasis, Record and Wait are registered applications, found by exact name.
func TestAppRegistry(t *testing.T) {
	for _, name := range []string{"Stasis", "Record", "Wait"} {
		a, ok := LookupApp(name)
		if !ok || a.Name != name || a.Check == nil || a.Run == nil {
			t.Errorf("LookupApp(%q) = %+v, %v", name, a, ok)
		}
	}
	if _, ok := LookupApp("record"); ok {
		t.Error("lookup is case-insensitive")
	}
	// Only Stasis runs on an originated channel's extension, as before.
	for name, want := range map[string]bool{"Stasis": true, "Record": false, "Wait": false} {
		if a, _ := LookupApp(name); a.OnOriginate != want {
			t.Errorf("%s.OnOriginate = %v", name, a.OnOriginate)
		}
	}
}

// A new application registers without touching Invite, and the
// configuration check finds it and runs its Check.
func TestRegisterApp(t *testing.T) {
	var checked []string
	t.Cleanup(func() {
		appRegistry.Lock()
		delete(appRegistry.apps, "TestRegisterApp")
		appRegistry.Unlock()
	})
	RegisterApp(Application{
		Name:  "TestRegisterApp",
		Check: func(args []string, _ CheckEnv) error { checked = args; return errors.New("bad args") },
		Run:   func(*Invocation) {},
	})
	// Other packages register applications too (Dial, Script, ...): the
	// list is sorted and holds the built-ins and the new one.
	names := AppNames()
	if !slices.IsSorted(names) {
		t.Fatalf("AppNames not sorted: %v", names)
	}
	for _, want := range []string{"Record", "Stasis", "TestRegisterApp", "Wait"} {
		if !slices.Contains(names, want) {
			t.Fatalf("AppNames = %v, lacks %s", names, want)
		}
	}
	err := AppChecker(CheckEnv{})(dialplan.App{Name: "TestRegisterApp", Args: []string{"x"}})
	if err == nil || err.Error() != "bad args" || !reflect.DeepEqual(checked, []string{"x"}) {
		t.Fatalf("check: %v, args %v", err, checked)
	}
	for _, bad := range []Application{
		{Name: "TestRegisterApp", Check: func([]string, CheckEnv) error { return nil }, Run: func(*Invocation) {}},
		{Name: "", Check: func([]string, CheckEnv) error { return nil }, Run: func(*Invocation) {}},
		{Name: "NoRun", Check: func([]string, CheckEnv) error { return nil }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterApp(%q) did not panic", bad.Name)
				}
			}()
			RegisterApp(bad)
		}()
	}
}

// Each application's arguments are checked as its calls would use them.
func TestAppChecks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	check := AppChecker(CheckEnv{RecordingsDir: root})
	for in, want := range map[string]string{
		"Stasis(vm-record,300)": "",
		"Stasis":                "no ARI application name: want Stasis(app[,args...])",
		"Record(calls/${UNIQUEID}-${CALLSID},wav)": "",
		"Record(c/${CALLERID(num)}-${EPOCH},FLAC)": "",
		"Record(calls/x)":                          "",
		"Record(calls/v1.0)":                       "",
		"Record(calls/${EXTEN}.wav)":               `name "calls/${EXTEN}.wav" ends in ".wav": write Record(calls/${EXTEN},wav) (the format is an argument; the file gets its extension)`,
		"Record(calls/x.wav,wav)":                  "",
		"Record":                                   "no recording name: want Record(name[,format]), e.g. Record(calls/${EXTEN}-${UNIQUEID},wav)",
		"Record(calls/x,wma)":                      `unknown format "wma" (known: wav, wav16, sln, ulaw, alaw, g722, flac, mp3, ogg)`,
		"Record(calls/x,wav,q)":                    "3 arguments: want Record(name[,format])",
		"Record(../../etc/x,wav)":                  `invalid recording name "../../etc/x": ".." path segment (names stay inside the recordings root)`,
		"Record(/etc/x)":                           `invalid recording name "/etc/x": absolute path (names stay inside the recordings root)`,
		"Record(link/x)":                           `invalid recording name "link/x" resolves outside the recordings root (names stay inside the recordings root)`,
		"Record(calls/${UNIQUID})":                 `name "calls/${UNIQUID}": unknown variable ${UNIQUID} (known: EXTEN, UNIQUEID, CALLSID, CALLERID(num), EPOCH)`,
		"Record(calls/${UNIQUEID)":                 `name "calls/${UNIQUEID": "${" without "}"`,
		"Wait(2.5)":                                "",
		"Wait":                                     "",
		"Wait(5s)":                                 `"5s" is not a number of seconds`,
		"Wait(-1)":                                 `"-1" is not a number of seconds`,
		"Wait(NaN)":                                `"NaN" is not a number of seconds`,
		"Wait(1,2)":                                "2 arguments: want Wait(seconds)",
		"Recrod(x)":                                `unknown application "Recrod" (did you mean Record?)`,
		"stasis(x)":                                `unknown application "stasis" (did you mean Stasis?)`,
		"Wiat(1)":                                  `unknown application "Wiat" (did you mean Wait?)`,
		"Playback(hello)":                          `unknown application "Playback" (known: CallRecordToggle, Dial, DialTrunk, Record, Stasis, Wait)`,
	} {
		app, err := dialplan.ParseApp(in)
		if err != nil {
			t.Fatal(err)
		}
		err = check(app)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// A format this build or machine cannot write (mp3 without lame, ogg
// without libopus) is found by the check, with the recorder's hint.
func TestRecordCheckUnavailableFormat(t *testing.T) {
	check := AppChecker(CheckEnv{RecordingsDir: t.TempDir()})
	for _, f := range []string{"mp3", "ogg"} {
		_, want := recorder.Lookup(f)
		got := check(dialplan.App{Name: "Record", Args: []string{"calls/x", f}})
		if (want == nil) != (got == nil) || want != nil && got.Error() != want.Error() {
			t.Errorf("%s: check %v, recorder %v", f, got, want)
		}
	}
}

func TestWaitSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "1": time.Second, "0.25": 250 * time.Millisecond} {
		args := []string{in}
		if got, err := waitSeconds(args); err != nil || got != want {
			t.Errorf("waitSeconds(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := waitSeconds([]string{"1e300"}); err == nil {
		t.Error("an overflowing wait accepted")
	}
}

func TestClosestName(t *testing.T) {
	names := []string{"Record", "Stasis", "Wait"}
	for in, want := range map[string]string{"Recrod": "Record", "RECORD": "Record", "Stasi": "Stasis", "Wat": "Wait", "Playback": "", "Rec": ""} {
		if got := closestName(in, names); got != want {
			t.Errorf("closestName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Admission keeps each application's answer to a call it cannot take: an
// unconnected Stasis app is declined with 603 and the log line Asterisk
// users look for; a Record() without a name and a bad Wait() get 500.
func TestAppAdmit(t *testing.T) {
	m := NewManager(Options{Bus: event.NewBus("test")})
	for _, tc := range []struct {
		app  string
		args []string
		code int
		log  string
	}{
		{"Stasis", []string{"nobody", "1"}, 603, "Stasis app 'nobody' not registered; declining call"},
		{"Stasis", nil, 603, "rejecting call: Stasis() without an application name"},
		{"Record", nil, 500, "rejecting call: Record() needs a name, e.g. Record(calls/${EXTEN}-${UNIQUEID},wav)"},
		{"Wait", []string{"x"}, 500, "rejecting call: bad Wait() argument"},
		{"Record", []string{"calls/x"}, 0, ""},
		{"Wait", []string{"1"}, 0, ""},
	} {
		var buf strings.Builder
		inv := &Invocation{Args: tc.args, Calls: m, Log: slog.New(slog.NewTextHandler(&buf, nil))}
		a, _ := LookupApp(tc.app)
		no := a.Admit(inv)
		switch {
		case tc.code == 0 && no != nil:
			t.Errorf("%s%v declined: %+v", tc.app, tc.args, no)
		case tc.code != 0 && (no == nil || no.Code != tc.code):
			t.Errorf("%s%v: %+v, want %d", tc.app, tc.args, no, tc.code)
		}
		if !strings.Contains(buf.String(), tc.log) || tc.log == "" && buf.Len() > 0 {
			t.Errorf("%s%v logged %q, want %q", tc.app, tc.args, buf.String(), tc.log)
		}
	}
	// Once an application of that name connects, the call is admitted.
	m.Bus().Register(event.NewSubscriber("vm", 0, false), nil)
	a, _ := LookupApp("Stasis")
	if no := a.Admit(&Invocation{Args: []string{"vm"}, Calls: m, Log: slog.New(slog.DiscardHandler)}); no != nil {
		t.Errorf("registered app declined: %+v", no)
	}
}
