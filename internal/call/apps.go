package call

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/dialplan"
	"github.com/tapedeck/tapedeck/internal/gopool"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// Application is a dialplan application: what a route's app runs for a
// call. Applications register themselves (RegisterApp) and are found by
// name; Invite knows none of them.
type Application struct {
	// Name is what routes write: Stasis, Record, Wait.
	Name string
	// Check validates a route's arguments at configuration time (tapedeck
	// -t and start-up), so that no call fails because of them. ${EXTEN} is
	// already replaced by an extension the route matches.
	Check func(args []string, env CheckEnv) error
	// Admit runs for each call before its channel is made: a non-nil
	// *Decline refuses the call with that SIP status (the app logs why).
	// Nil: every call is admitted.
	Admit func(inv *Invocation) *Decline
	// Run starts the application on the call's channel (inv.ChannelID); it
	// must not block.
	Run func(inv *Invocation)
	// OnOriginate: the application may run on an originated channel once
	// it is answered (POST /channels with an extension).
	OnOriginate bool
	// Authenticate: callers must be users, authenticated by SIP digest
	// before the call is admitted (Invocation.CallerUser says who).
	Authenticate bool
}

// CheckEnv is what an application's Check may consult.
type CheckEnv struct {
	// RecordingsDir is the recordings root that recording names must stay
	// inside.
	RecordingsDir string
}

// Invocation is one call's run of an application. Applications outside
// this package drive the call through Calls by ChannelID, never by holding
// the channel.
type Invocation struct {
	// Args are the route's arguments with ${EXTEN} substituted.
	Args []string
	// Route is the matched route.
	Route *dialplan.Route
	Log   *slog.Logger
	// Calls is the node's call model.
	Calls Calls
	// ChannelID is the call's channel; empty in Admit (not made yet).
	ChannelID ChannelID
	// CallerUser is the SIP username the caller authenticated as, for an
	// application with Authenticate.
	CallerUser string
	// Trunk is the trunk the call came from (nil: not from a trunk).
	Trunk *Trunk

	ch *Channel // for the applications of this package
}

// manager is the local manager behind Calls, for this package's own
// applications (which run where the call is).
func (inv *Invocation) manager() *Manager {
	m, _ := inv.Calls.(*Manager)
	return m
}

// Decline refuses a call with a SIP final response.
type Decline struct {
	Code   int
	Reason string
}

var appRegistry = struct {
	sync.RWMutex
	apps map[string]*Application
}{apps: map[string]*Application{}}

// RegisterApp adds a dialplan application. Registering a name twice, or an
// application without Name, Check or Run, panics (a programming error, found
// at start).
func RegisterApp(a Application) {
	if a.Name == "" || a.Check == nil || a.Run == nil {
		panic("call: RegisterApp: Name, Check and Run are required")
	}
	appRegistry.Lock()
	defer appRegistry.Unlock()
	if _, dup := appRegistry.apps[a.Name]; dup {
		panic("call: RegisterApp: " + a.Name + " registered twice")
	}
	appRegistry.apps[a.Name] = &a
}

// LookupApp finds a registered application by its exact name.
func LookupApp(name string) (*Application, bool) {
	appRegistry.RLock()
	defer appRegistry.RUnlock()
	a, ok := appRegistry.apps[name]
	return a, ok
}

// AppNames lists the registered applications, sorted.
func AppNames() []string {
	appRegistry.RLock()
	defer appRegistry.RUnlock()
	names := make([]string, 0, len(appRegistry.apps))
	for n := range appRegistry.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownApp: no application of that name is registered.
var ErrUnknownApp = errors.New("unknown application")

// AppChecker is the configuration-time check of every route's application
// (for dialplan.CompileChecked): the name must be registered and the
// arguments must pass its Check.
func AppChecker(env CheckEnv) dialplan.AppCheck {
	return func(app dialplan.App) error {
		a, ok := LookupApp(app.Name)
		if !ok {
			if s := closestName(app.Name, AppNames()); s != "" {
				return fmt.Errorf("%w %q (did you mean %s?)", ErrUnknownApp, app.Name, s)
			}
			return fmt.Errorf("%w %q (known: %s)", ErrUnknownApp, app.Name, strings.Join(AppNames(), ", "))
		}
		return a.Check(app.Args, env)
	}
}

// closestName is the registered name nearest to name (case-insensitively,
// at most two edits away), or "".
func closestName(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := editDistance(strings.ToLower(name), strings.ToLower(n))
		if strings.EqualFold(name, n) {
			d = 0
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Damerau (optimal string alignment) distance: a swap of
// two neighbours ("Recrod") counts as one edit.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func init() {
	RegisterApp(stasisApp)
	RegisterApp(recordApp)
	RegisterApp(waitApp)
	RegisterApp(dialApp)
	RegisterApp(callRecordToggleApp)
	RegisterApp(dialTrunkApp)
}

// start runs the application on ch, made for the call inv admitted.
func (a *Application) start(ch *Channel, inv *Invocation) {
	inv.ch, inv.ChannelID = ch, ChannelID(ch.id)
	a.Run(inv)
}

// Stasis(app[,args...]) hands the call to an ARI application.
var stasisApp = Application{
	Name:        "Stasis",
	OnOriginate: true,
	Check: func(args []string, _ CheckEnv) error {
		if len(args) == 0 || args[0] == "" {
			return errors.New("no ARI application name: want Stasis(app[,args...])")
		}
		return nil
	},
	Admit: func(inv *Invocation) *Decline {
		if len(inv.Args) == 0 || inv.Args[0] == "" {
			inv.Log.Error("rejecting call: Stasis() without an application name")
			return &Decline{603, "Decline"}
		}
		if name := inv.Args[0]; !inv.manager().bus.Registered(name) {
			// Asterisk: Stasis fails, the dialplan ends, chan_pjsip declines.
			inv.Log.Warn(fmt.Sprintf("Stasis app '%s' not registered; declining call", name))
			return &Decline{603, "Decline"}
		}
		return nil
	},
	Run: func(inv *Invocation) {
		ch := inv.ch
		inv.Log.Info("call entering Stasis", "channel", ch.id, "name", ch.name, "app", inv.Args[0], "args", strings.Join(inv.Args[1:], ","))
		ch.enterStasis(inv.Args[0], inv.Args[1:])
	},
}

// Record(name[,format]) answers and records the caller until hangup.
var recordApp = Application{
	Name: "Record",
	Check: func(args []string, env CheckEnv) error {
		if len(args) == 0 || args[0] == "" {
			return errors.New("no recording name: want Record(name[,format]), e.g. Record(calls/${EXTEN}-${UNIQUEID},wav)")
		}
		if len(args) > 2 {
			return fmt.Errorf("%d arguments: want Record(name[,format])", len(args))
		}
		if len(args) == 2 && args[1] != "" {
			if _, err := recorder.Lookup(args[1]); err != nil {
				if errors.Is(err, recorder.ErrUnknownFormat) {
					return fmt.Errorf("unknown format %q (known: %s)", args[1], strings.Join(formatNames(), ", "))
				}
				return err
			}
		}
		if ext := path.Ext(args[0]); len(args) < 2 && ext != "" {
			if f, ok := recorder.ByExt(ext); ok {
				// Asterisk's Record(name.format): here the format is an
				// argument, and the file would be name.wav.wav.
				return fmt.Errorf("name %q ends in %q: write Record(%s,%s) (the format is an argument; the file gets its extension)", args[0], ext, strings.TrimSuffix(args[0], ext), f.Name)
			}
		}
		name, err := sampleRecordName(args[0])
		if err != nil {
			return err
		}
		if _, err := recorder.ResolveName(env.RecordingsDir, name); err != nil {
			// The recorder's reason, without its package prefix: the
			// name as the call would make it and why it is refused.
			why := strings.TrimPrefix(err.Error(), recorder.ErrInvalidName.Error()+": ")
			return fmt.Errorf("invalid recording name %s (names stay inside the recordings root)", why)
		}
		return nil
	},
	Admit: func(inv *Invocation) *Decline {
		if len(inv.Args) == 0 || inv.Args[0] == "" {
			inv.Log.Error("rejecting call: Record() needs a name, e.g. Record(calls/${EXTEN}-${UNIQUEID},wav)")
			return &Decline{500, "Server Internal Error"}
		}
		return nil
	},
	Run: func(inv *Invocation) {
		var maxDuration time.Duration
		if inv.Route != nil {
			maxDuration = inv.Route.MaxDuration
		}
		gopool.Go(func() { inv.ch.runRecordApp(inv.Args, maxDuration) })
	},
}

// recordVars are the variables a Record() name may use.
var recordVars = []string{"EXTEN", "UNIQUEID", "CALLSID", "CALLERID(num)", "EPOCH"}

// recordNameVars are the variables of a Record() name on ch (ch.mu not
// held: SetVar may change the caller while it is read).
func recordNameVars(ch *Channel) map[string]string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return map[string]string{
		"EXTEN": ch.dialplan.Exten, "UNIQUEID": ch.id, "CALLSID": ch.callSid,
		"CALLERID(num)": ch.caller.Number, "EPOCH": fmt.Sprint(ch.created.Unix()),
	}
}

// sampleRecordName fills a Record() name's variables with values of the
// kind a call gives them; an unknown variable (which would be empty) is an
// error.
func sampleRecordName(name string) (string, error) {
	sample := map[string]string{
		"EXTEN": "1000", "UNIQUEID": "1764806400.1", "CALLSID": "CA" + strings.Repeat("0", 32),
		"CALLERID(num)": "1000", "EPOCH": "1764806400",
	}
	for rest := name; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("name %q: \"${\" without \"}\"", name)
		}
		if v := rest[i+2 : i+j]; sample[v] == "" {
			return "", fmt.Errorf("name %q: unknown variable ${%s} (known: %s)", name, v, strings.Join(recordVars, ", "))
		}
		rest = rest[i+j+1:]
	}
	return dialplan.Substitute(name, sample), nil
}

func formatNames() []string {
	var out []string
	for _, f := range recorder.Formats() {
		out = append(out, f.Name)
	}
	return out
}

// Wait(seconds) leaves the call in the dialplan for that long, then hangs up.
var waitApp = Application{
	Name:        "Wait",
	OnOriginate: false,
	Check: func(args []string, _ CheckEnv) error {
		if len(args) > 1 {
			return fmt.Errorf("%d arguments: want Wait(seconds)", len(args))
		}
		_, err := waitSeconds(args)
		return err
	},
	Admit: func(inv *Invocation) *Decline {
		if _, err := waitSeconds(inv.Args); err != nil {
			inv.Log.Error("rejecting call: bad Wait() argument", "arg", inv.Args[0])
			return &Decline{500, "Server Internal Error"}
		}
		return nil
	},
	Run: func(inv *Invocation) {
		ch := inv.ch
		// A channel outside any application: it waits in the dialplan, then
		// the dialplan ends and the call is hung up.
		wait, _ := waitSeconds(inv.Args)
		inv.Log.Info("call waiting in dialplan", "channel", ch.id, "seconds", wait.Seconds())
		go func() {
			if ch.sleep(wait) {
				ch.hangup(CauseNormalClearing, false)
			}
		}()
	},
}

// waitSeconds reads Wait's optional argument: seconds, fractions allowed.
func waitSeconds(args []string) (time.Duration, error) {
	if len(args) == 0 || args[0] == "" {
		return 0, nil
	}
	secs, err := strconv.ParseFloat(args[0], 64)
	if err != nil || secs < 0 || math.IsNaN(secs) || math.IsInf(secs, 0) || secs > math.MaxInt64/float64(time.Second) {
		return 0, fmt.Errorf("%q is not a number of seconds", args[0])
	}
	return time.Duration(secs * float64(time.Second)), nil
}
