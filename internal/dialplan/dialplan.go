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
// arguments "vm-record" and "${EXTEN}".
func ParseApp(s string) (App, error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open < 0 {
		if s == "" || strings.ContainsAny(s, "),") {
			return App{}, fmt.Errorf("%w: %q", ErrBadApp, s)
		}
		return App{Name: s}, nil
	}
	if !strings.HasSuffix(s, ")") || open == 0 {
		return App{}, fmt.Errorf("%w: %q (want Name(args))", ErrBadApp, s)
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

// Route is one compiled rule.
type Route struct {
	Exten   string
	Context string
	Account string // account (name) owning the calls' recordings
	// MaxDuration caps a Record() route's recordings (0: the global cap).
	MaxDuration time.Duration
	App         App
	pattern     []class // nil for an exact extension
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
}

// Compile builds a Plan. Every bad rule is reported.
func Compile(rules []Rule) (*Plan, error) {
	p := &Plan{exact: map[string]*Route{}}
	var errs []error
	for i, r := range rules {
		app, err := ParseApp(r.App)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%s): %w", i, r.Exten, err))
			continue
		}
		ctx := r.Context
		if ctx == "" {
			ctx = "default"
		}
		rt := &Route{Exten: r.Exten, Context: ctx, App: app, Account: r.Account, MaxDuration: r.MaxDuration}
		if strings.HasPrefix(r.Exten, "_") {
			pat, err := compilePattern(r.Exten[1:])
			if err != nil {
				errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
				continue
			}
			rt.pattern = pat
			p.patterns = append(p.patterns, rt)
			continue
		}
		if r.Exten == "" {
			errs = append(errs, fmt.Errorf("rule %d: empty extension", i))
			continue
		}
		if _, dup := p.exact[r.Exten]; dup {
			errs = append(errs, fmt.Errorf("rule %d: extension %q defined twice", i, r.Exten))
			continue
		}
		p.exact[r.Exten] = rt
	}
	sort.SliceStable(p.patterns, func(i, j int) bool {
		return moreSpecific(p.patterns[i].pattern, p.patterns[j].pattern)
	})
	return p, errors.Join(errs...)
}

func compilePattern(s string) ([]class, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty pattern", ErrBadPattern)
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
				return nil, fmt.Errorf("%w: %q: %q must end the pattern", ErrBadPattern, s, ch)
			}
			c.tail = ch
			c.size = 256
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 2 {
				return nil, fmt.Errorf("%w: %q: unterminated or empty [", ErrBadPattern, s)
			}
			body := s[i+1 : i+end]
			for j := 0; j < len(body); j++ {
				if j+2 < len(body) && body[j+1] == '-' {
					if body[j] > body[j+2] {
						return nil, fmt.Errorf("%w: %q: bad range %q", ErrBadPattern, s, body[j:j+3])
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
	app := App{Name: rt.App.Name, Args: make([]string, len(rt.App.Args))}
	for i, a := range rt.App.Args {
		// Only ${EXTEN} is known here; other variables (${UNIQUEID}, ...)
		// are left for the application to fill in.
		app.Args[i] = strings.ReplaceAll(a, "${EXTEN}", exten)
	}
	return rt, app, nil
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
