// Package dialplan routes a dialled extension to an application, with
// Asterisk's extension pattern syntax (_X., _3XX, _NXXNXXXXXX, [1-5], !).
package dialplan

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sentinel errors.
var (
	ErrNoRoute    = errors.New("dialplan: no route for extension")
	ErrBadPattern = errors.New("dialplan: bad extension pattern")
	ErrBadApp     = errors.New("dialplan: bad application")
)

// App is a dialplan application invocation such as Stasis(vm-record,${EXTEN}).
type App struct {
	Name string
	Args []string
}

// String renders the application as Asterisk shows app_name(app_data).
func (a App) String() string { return a.Name + "(" + strings.Join(a.Args, ",") + ")" }

// Data is the application's argument string (Asterisk's app_data).
func (a App) Data() string { return strings.Join(a.Args, ",") }

// ParseApp parses "Name(arg1,arg2,...)" or a bare "Name". Arguments are
// trimmed of surrounding spaces, so "Stasis(vm-record, ${EXTEN})" has the
// arguments "vm-record" and "${EXTEN}". Errors wrap ErrBadApp.
func ParseApp(s string) (App, error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open < 0 {
		switch {
		case s == "":
			return App{}, &syntaxError{ErrBadApp, "", "no application"}
		case strings.ContainsAny(s, "),"):
			return App{}, &syntaxError{ErrBadApp, s, `want Name(args)`}
		}
		return App{Name: s}, nil
	}
	switch {
	case open == 0:
		return App{}, &syntaxError{ErrBadApp, s, `no application name before "("`}
	case !strings.HasSuffix(s, ")"):
		return App{}, &syntaxError{ErrBadApp, s, `missing ")" at the end`}
	}
	name := strings.TrimSpace(s[:open])
	inner := s[open+1 : len(s)-1]
	var args []string
	if strings.TrimSpace(inner) != "" {
		for _, a := range strings.Split(inner, ",") {
			args = append(args, strings.TrimSpace(a))
		}
	}
	return App{Name: name, Args: args}, nil
}

// syntaxError is a malformed application or pattern: what was written and
// why it is wrong. errors.Is matches its sentinel.
type syntaxError struct {
	kind error // ErrBadApp or ErrBadPattern
	text string
	why  string
}

func (e *syntaxError) Error() string {
	if e.text == "" {
		return e.why
	}
	return e.text + ": " + e.why
}

func (e *syntaxError) Is(target error) bool { return target == e.kind }

// Route is one compiled rule.
type Route struct {
	Exten   string
	Context string
	Account string // account (name) owning the calls' recordings
	// MaxDuration caps a Record() route's recordings (0: the global cap).
	MaxDuration time.Duration
	App         App
	// Variables are set on the route's calls before the application runs.
	Variables map[string]string
	pattern   []class // nil for an exact extension
}

// class is one position of a pattern: a set of bytes, or a wildcard tail.
type class struct {
	set  [256]bool
	size int
	tail byte // '.' (one or more) or '!' (zero or more); 0 otherwise
}

// Plan is an immutable, compiled dialplan.
type Plan struct {
	exact    map[string]*Route
	patterns []*Route // sorted most specific first
}

// Rule is the uncompiled form of a route.
type Rule struct {
	Exten       string
	App         string
	Context     string
	Account     string
	MaxDuration time.Duration
	Variables   map[string]string
}

// AppCheck checks one route's application at configuration time. The
// application's ${EXTEN} is already replaced by an extension the route
// matches; other variables are left for the check.
type AppCheck func(App) error

// Compile builds a Plan. Every bad rule is reported.
func Compile(rules []Rule) (*Plan, error) { return CompileChecked(rules, nil) }

// CompileChecked builds a Plan and checks every route's application with
// check (nil: syntax only). Every problem of every rule is reported, each
// as "rule N (exten "E"): ..." with rules numbered from 1 in their order.
func CompileChecked(rules []Rule, check AppCheck) (*Plan, error) {
	p := &Plan{exact: map[string]*Route{}}
	var errs []error
	firstExact := map[string]int{}
	for i, r := range rules {
		bad := func(err error) { errs = append(errs, &RuleError{Rule: i + 1, Exten: r.Exten, Err: err}) }
		ok := true
		var pat []class
		switch {
		case r.Exten == "" || r.Exten == "_":
			bad(errors.New("empty extension"))
			ok = false
		case strings.HasPrefix(r.Exten, "_"):
			var err error
			if pat, err = compilePattern(r.Exten[1:]); err != nil {
				bad(err)
				ok = false
			}
		default:
			if first, dup := firstExact[r.Exten]; dup {
				bad(fmt.Errorf("extension defined twice (first in rule %d)", first))
				ok = false
			} else {
				firstExact[r.Exten] = i + 1
			}
		}
		app, err := ParseApp(r.App)
		if err != nil {
			bad(err)
			continue
		}
		if check != nil {
			sample := r.Exten
			if pat != nil {
				sample = sampleExten(pat)
			}
			if err := check(substituteExten(app, sample)); err != nil {
				bad(fmt.Errorf("%s: %w", strings.TrimSpace(r.App), err))
				ok = false
			}
		}
		if !ok {
			continue
		}
		ctx := r.Context
		if ctx == "" {
			ctx = "default"
		}
		rt := &Route{Exten: r.Exten, Context: ctx, App: app, Account: r.Account, MaxDuration: r.MaxDuration, Variables: r.Variables, pattern: pat}
		if pat != nil {
			p.patterns = append(p.patterns, rt)
		} else {
			p.exact[r.Exten] = rt
		}
	}
	sort.SliceStable(p.patterns, func(i, j int) bool {
		return moreSpecific(p.patterns[i].pattern, p.patterns[j].pattern)
	})
	return p, errors.Join(errs...)
}

// RuleError is a problem with one rule, numbered from 1.
type RuleError struct {
	Rule  int
	Exten string
	Err   error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rule %d (exten %q): %v", e.Rule, e.Exten, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// sampleExten is the shortest extension pat matches, with the lowest
// character of each class: _NXX gives "200", _X. "00".
func sampleExten(pat []class) string {
	var b strings.Builder
	for _, c := range pat {
		if c.tail == '.' {
			b.WriteByte('0')
			continue
		}
		if c.tail != 0 {
			continue
		}
		for ch := 0; ch < 256; ch++ {
			if c.set[ch] {
				b.WriteByte(byte(ch))
				break
			}
		}
	}
	return b.String()
}

// substituteExten replaces ${EXTEN} in app's arguments, as Match does.
func substituteExten(a App, exten string) App {
	out := App{Name: a.Name, Args: make([]string, len(a.Args))}
	for i, arg := range a.Args {
		// Only ${EXTEN} is known here; other variables (${UNIQUEID}, ...)
		// are left for the application to fill in.
		out.Args[i] = strings.ReplaceAll(arg, "${EXTEN}", exten)
	}
	return out
}

func compilePattern(s string) ([]class, error) {
	bad := func(why string) error { return &syntaxError{ErrBadPattern, "_" + s, why} }
	if s == "" {
		return nil, bad("empty pattern")
	}
	var out []class
	for i := 0; i < len(s); i++ {
		var c class
		switch ch := s[i]; ch {
		case 'X', 'x':
			c.addRange('0', '9')
		case 'Z', 'z':
			c.addRange('1', '9')
		case 'N', 'n':
			c.addRange('2', '9')
		case '.', '!':
			if i != len(s)-1 {
				return nil, bad(fmt.Sprintf("%q must end the pattern", ch))
			}
			c.tail = ch
			c.size = 256
		case '[':
			end := strings.IndexByte(s[i:], ']')
			switch {
			case end < 0:
				return nil, bad(`"[" is not closed by "]"`)
			case end == 1:
				return nil, bad(`empty "[]"`)
			}
			body := s[i+1 : i+end]
			for j := 0; j < len(body); j++ {
				if j+2 < len(body) && body[j+1] == '-' {
					if body[j] > body[j+2] {
						return nil, bad(fmt.Sprintf("range %q runs backwards", body[j:j+3]))
					}
					c.addRange(body[j], body[j+2])
					j += 2
					continue
				}
				c.addRange(body[j], body[j])
			}
			i += end
		default:
			c.addRange(ch, ch)
		}
		out = append(out, c)
	}
	return out, nil
}

func (c *class) addRange(lo, hi byte) {
	for b := int(lo); b <= int(hi); b++ {
		if !c.set[b] {
			c.set[b] = true
			c.size++
		}
	}
}

// moreSpecific orders patterns as Asterisk does: position by position, the
// narrower class wins; a wildcard tail is the widest.
func moreSpecific(a, b []class) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i].size != b[i].size {
			return a[i].size < b[i].size
		}
	}
	return len(a) > len(b)
}

func (r *Route) matches(exten string) bool {
	pat := r.pattern
	for i, c := range pat {
		if c.tail != 0 {
			rest := len(exten) - i
			if c.tail == '.' {
				return rest >= 1
			}
			return rest >= 0
		}
		if i >= len(exten) || !c.set[exten[i]] {
			return false
		}
	}
	return len(exten) == len(pat)
}

// Match finds the route for exten: an exact extension first, then the most
// specific matching pattern. The returned App has ${EXTEN} substituted.
func (p *Plan) Match(exten string) (*Route, App, error) {
	rt, ok := p.exact[exten]
	if !ok {
		for _, cand := range p.patterns {
			if cand.matches(exten) {
				rt = cand
				break
			}
		}
	}
	if rt == nil {
		return nil, App{}, fmt.Errorf("%w %q", ErrNoRoute, exten)
	}
	return rt, substituteExten(rt.App, exten), nil
}

// Substitute replaces ${NAME} with vars[NAME] (unknown names become empty,
// as in Asterisk).
func Substitute(s string, vars map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(vars[s[i+2:i+j]])
		s = s[i+j+1:]
	}
}

// MatchIn finds the route for exten among the routes of one context (an
// exact extension first, then the most specific pattern), as Asterisk
// looks an extension up in the context a channel is sent to (ARI's
// continue). The returned App has ${EXTEN} substituted.
func (p *Plan) MatchIn(context, exten string) (*Route, App, error) {
	rt, ok := p.exact[exten]
	if !ok || rt.Context != context {
		rt = nil
		for _, cand := range p.patterns {
			if cand.Context == context && cand.matches(exten) {
				rt = cand
				break
			}
		}
	}
	if rt == nil {
		return nil, App{}, fmt.Errorf("%w %q in context %q", ErrNoRoute, exten, context)
	}
	return rt, substituteExten(rt.App, exten), nil
}
