package dialplan

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseApp(t *testing.T) {
	cases := []struct {
		in   string
		want App
		bad  bool
	}{
		{"Stasis(vm-record, ${EXTEN})", App{"Stasis", []string{"vm-record", "${EXTEN}"}}, false},
		{"Stasis(channel-tones)", App{"Stasis", []string{"channel-tones"}}, false},
		{"Hangup", App{Name: "Hangup"}, false},
		{"Stasis()", App{Name: "Stasis"}, false},
		{"Stasis(a", App{}, true},
		{"(a)", App{}, true},
		{"", App{}, true},
	}
	for _, c := range cases {
		got, err := ParseApp(c.in)
		if c.bad {
			if !errors.Is(err, ErrBadApp) {
				t.Errorf("ParseApp(%q) err = %v, want ErrBadApp", c.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseApp(%q) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
}

func TestMatch(t *testing.T) {
	p, err := Compile([]Rule{
		{Exten: "_X.", App: "Stasis(catchall,${EXTEN})"},
		{Exten: "_3XX", App: "Stasis(vm-record, ${EXTEN})"},
		{Exten: "1000", App: "Stasis(channel-tones)"},
		{Exten: "_1[0-4]0[!]", App: "Stasis(odd)"},
		{Exten: "_NXX", App: "Stasis(nxx,${EXTEN},x)"},
		{Exten: "_Z!", App: "Stasis(zbang)"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		exten, app string
		args       []string
	}{
		{"305", "Stasis", []string{"vm-record", "305"}},
		{"1000", "Stasis", []string{"channel-tones"}},
		{"405", "Stasis", []string{"nxx", "405", "x"}},
		{"9", "Stasis", []string{"zbang"}},
		{"01", "Stasis", []string{"catchall", "01"}},
		{"1201", "Stasis", []string{"zbang"}}, // Z is narrower than X
		{"120!", "Stasis", []string{"odd"}},
		{"30", "Stasis", []string{"zbang"}},
	}
	for _, c := range cases {
		_, app, err := p.Match(c.exten)
		if err != nil {
			t.Fatalf("Match(%q): %v", c.exten, err)
		}
		if app.Name != c.app || !reflect.DeepEqual(app.Args, c.args) {
			t.Errorf("Match(%q) = %v, want %s%v", c.exten, app, c.app, c.args)
		}
	}
}

func TestNoMatch(t *testing.T) {
	p, err := Compile([]Rule{{Exten: "_3XX", App: "Stasis(vm)"}, {Exten: "1000", App: "Stasis(t)"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"", "3", "30", "3000", "abc", "1001", "x05"} {
		if _, _, err := p.Match(ext); !errors.Is(err, ErrNoRoute) {
			t.Errorf("Match(%q) err = %v, want ErrNoRoute", ext, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, r := range []Rule{
		{Exten: "_X.X", App: "Stasis(a)"},
		{Exten: "_[", App: "Stasis(a)"},
		{Exten: "_[9-1]", App: "Stasis(a)"},
		{Exten: "_", App: "Stasis(a)"},
		{Exten: "100", App: "Stasis(a"},
	} {
		if _, err := Compile([]Rule{r}); err == nil {
			t.Errorf("Compile(%+v) succeeded, want error", r)
		}
	}
	if _, err := Compile([]Rule{{Exten: "1", App: "A"}, {Exten: "1", App: "B"}}); err == nil {
		t.Error("duplicate extension accepted")
	}
}

func TestSubstitute(t *testing.T) {
	got := Substitute("a${EXTEN}b${NOPE}c${", map[string]string{"EXTEN": "42"})
	if got != "a42bc${" {
		t.Errorf("got %q", got)
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("_X.", "123")
	f.Add("_[1-3]N!", "19")
	f.Fuzz(func(t *testing.T, pat, exten string) {
		p, err := Compile([]Rule{{Exten: pat, App: "Stasis(x,${EXTEN})"}})
		if err != nil {
			return
		}
		_, app, err := p.Match(exten)
		if err == nil && app.Args[1] != exten {
			t.Fatalf("substitution lost exten: %v", app)
		}
	})
}

// Every problem of every rule is reported, numbered from 1 with its
// extension, in the rules' order.
func TestCompileReportsEveryRule(t *testing.T) {
	_, err := Compile([]Rule{
		{Exten: "1000", App: "Stasis(a)"},
		{Exten: "_2XX[", App: "Stasis(a)"},
		{Exten: "2001", App: "Stasis(x"},
		{Exten: "1000", App: "Stasis(b)"},
		{Exten: "_X.X", App: "Stasis(a)"},
		{Exten: "_[9-1]", App: "Stasis(a)"},
		{Exten: "_[]", App: "Stasis(a)"},
		{Exten: "", App: "Stasis(a)"},
		{Exten: "3000", App: ""},
		{Exten: "3001", App: "(a)"},
	})
	want := `rule 2 (exten "_2XX["): _2XX[: "[" is not closed by "]"
rule 3 (exten "2001"): Stasis(x: missing ")" at the end
rule 4 (exten "1000"): extension defined twice (first in rule 1)
rule 5 (exten "_X.X"): _X.X: '.' must end the pattern
rule 6 (exten "_[9-1]"): _[9-1]: range "9-1" runs backwards
rule 7 (exten "_[]"): _[]: empty "[]"
rule 8 (exten ""): empty extension
rule 9 (exten "3000"): no application
rule 10 (exten "3001"): (a): no application name before "("`
	if err == nil || err.Error() != want {
		t.Fatalf("errors:\n%v\nwant:\n%s", err, want)
	}
	if !errors.Is(err, ErrBadPattern) || !errors.Is(err, ErrBadApp) {
		t.Errorf("sentinels lost: %v", err)
	}
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != 2 || re.Exten != "_2XX[" {
		t.Errorf("RuleError: %+v", re)
	}
}

// CompileChecked hands each route's application to the check with ${EXTEN}
// replaced by an extension the route matches, and reports what it says.
func TestCompileChecked(t *testing.T) {
	var seen []App
	check := func(a App) error {
		seen = append(seen, a)
		if a.Name != "Stasis" {
			return errors.New("nope")
		}
		return nil
	}
	p, err := CompileChecked([]Rule{
		{Exten: "_3XX", App: "Stasis(vm, ${EXTEN})"},
		{Exten: "_N[5-7]!", App: "Stasis(a,${EXTEN})"},
		{Exten: "_9.", App: "Stasis(a,${EXTEN})"},
		{Exten: "2001", App: "Record(calls/${EXTEN}-${UNIQUEID})"},
	}, check)
	if err == nil || err.Error() != `rule 4 (exten "2001"): Record(calls/${EXTEN}-${UNIQUEID}): nope` {
		t.Fatalf("err = %v", err)
	}
	want := []App{
		{"Stasis", []string{"vm", "300"}},
		{"Stasis", []string{"a", "25"}},
		{"Stasis", []string{"a", "90"}},
		{"Record", []string{"calls/2001-${UNIQUEID}"}},
	}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("checked %v, want %v", seen, want)
	}
	for _, ext := range []string{"300", "25", "90"} {
		if _, _, err := p.Match(ext); err != nil {
			t.Errorf("sample %s does not match its route: %v", ext, err)
		}
	}
	if _, _, err := p.Match("2001"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("a rule failing its check was kept: %v", err)
	}
}

// The extension a route's application is checked with is one the route
// matches, whatever the pattern.
func FuzzSampleExten(f *testing.F) {
	for _, p := range []string{"_X.", "_3XX", "_N[5-7]!", "_[a-c]Z.", "_1!", "_!"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, exten string) {
		if !strings.HasPrefix(exten, "_") {
			return
		}
		pat, err := compilePattern(exten[1:])
		if err != nil {
			return
		}
		rt := &Route{pattern: pat}
		if s := sampleExten(pat); !rt.matches(s) {
			t.Fatalf("%s does not match its sample %q", exten, s)
		}
	})
}

// TestMatchIn: a lookup in a context sees only that context's routes, an
// exact extension of another context hiding nothing.
func TestMatchIn(t *testing.T) {
	p, err := Compile([]Rule{
		{Exten: "100", App: "Stasis(a)"},
		{Exten: "_1XX", Context: "other", App: "Stasis(b,${EXTEN})"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, app, err := p.MatchIn("other", "100"); err != nil || r.Context != "other" || app.Data() != "b,100" {
		t.Fatalf("other/100: %v %v %v", r, app, err)
	}
	if r, _, err := p.MatchIn("default", "100"); err != nil || r.App.Name != "Stasis" || r.Context != "default" {
		t.Fatalf("default/100: %v %v", r, err)
	}
	if _, _, err := p.MatchIn("default", "101"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("default/101: %v", err)
	}
	if _, _, err := p.MatchIn("nosuch", "100"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("nosuch/100: %v", err)
	}
}
