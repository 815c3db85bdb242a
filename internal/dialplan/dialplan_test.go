package dialplan

import (
	"errors"
	"reflect"
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
