package recname

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// at is the seed examples' call: Fri Dec  4 18:15:22 2026 UTC.
var at = time.Date(2026, 12, 4, 18, 15, 22, 0, time.UTC)

func vars() NameVars {
	return NameVars{SrcNum: "1001", DstNum: "1002", Time: at, BaseContext: "default",
		TenantUUID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}
}

func mustNamer(t *testing.T, o Options) *Namer {
	t.Helper()
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	if o.Location == nil {
		o.Location = time.FixedZone("CET", 3600)
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSeedExamples: the two templates of seed 002 give exactly the names
// the seed says.
func TestSeedExamples(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name, template string
		allowed        []string
		want           string
	}{
		{"default", "", nil,
			filepath.Join(root, "user-1001-1002-1796408122.wav")},
		{"example 1: a sub-directory per tenant, colons of utc_time dropped",
			"{{ tenant_uuid }}/{{ utc_time }}-{{ srcnum }}-{{ dstnum }}", nil,
			filepath.Join(root, "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "Fri Dec  4 181522 2026-1001-1002.wav")},
		{"example 2: another directory",
			"/home/pcm/call/user-{{ srcnum }}-{{ dstnum }}-{{ timestamp }}", []string{"/home/pcm/call"},
			"/home/pcm/call/user-1001-1002-1796408122.wav"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNamer(t, Options{Template: tc.template, Root: root, AllowedDirs: tc.allowed})
			got, err := n.Name(vars())
			if err != nil || got != tc.want {
				t.Fatalf("Name = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestVariables(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct{ template, want string }{
		{"{{ srcnum }}", "1001"},
		{"{{ dstnum }}", "1002"},
		{"{{ timestamp }}", "1796408122"},
		{"{{ utc_time }}", "Fri Dec  4 181522 2026"},
		{"{{ local_time }}", "Fri Dec  4 191522 2026"}, // CET
		{"{{ base_context }}", "default"},
		{"{{ tenant_uuid }}", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
		// Real Jinja2: filters, conditions, string methods.
		{"{{ srcnum | upper }}-{% if dstnum %}{{ dstnum }}{% else %}none{% endif %}", "1001-1002"},
		{"{{ base_context[:3] }}_{{ timestamp // 86400 }}", "def_20791"},
		{"{# a comment #}{{ 'x' ~ srcnum }}", "x1001"},
	} {
		n := mustNamer(t, Options{Template: tc.template, Root: root})
		got, err := n.Name(vars())
		if err != nil || got != filepath.Join(root, tc.want+".wav") {
			t.Errorf("%s = %q, %v; want %s.wav", tc.template, got, err, tc.want)
		}
	}
}

// TestPostProcess is Wazo's cleaning, character by character.
func TestPostProcess(t *testing.T) {
	for in, want := range map[string]string{
		"pépé":                     "pepe", // wazo-agid's own test
		"Fri Dec  4 18:15:22 2026": "Fri Dec  4 181522 2026",
		"a.b:c;d|e*f?g\"h<i>j\\k":  "abcdefghijk",
		"../../etc/passwd":         "//etc/passwd",
		"Ærøskøbing Straße":        "AEroskobing Strasse",
		"北京":                       "Bei Jing ",
		"tab\there\nnewline\x00":   "tabherenewline",
		"keep/-_ ok":               "keep/-_ ok",
		"":                         "",
		"!!!":                      "",
	} {
		if got := PostProcess(in); got != want {
			t.Errorf("PostProcess(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestNamePaths(t *testing.T) {
	root := t.TempDir()
	allowed := t.TempDir()
	v := vars()
	for _, tc := range []struct {
		name, template string
		v              NameVars
		want           string // relative to root, or absolute
		err            error
	}{
		{"empty result is the Unix time", "{{ srcnum }}", NameVars{Time: at.Add(123456 * time.Microsecond)}, "1796408122.123456.wav", nil},
		{"only dropped characters", "...:::", v, "1796408122.wav", nil},
		{"a directory without a file name", "{{ tenant_uuid }}/", v, "3f2504e0-4f89-41d3-9a0c-0305e82c3301/1796408122.wav", nil},
		{"dots cannot climb", "../../{{ srcnum }}", v, "1001.wav", nil},
		{"a caller id cannot add directories", "{{ srcnum }}", NameVars{SrcNum: "/etc/passwd", Time: at}, "etcpasswd.wav", nil},
		{"nor make the name absolute", "{{ srcnum }}-x", NameVars{SrcNum: "//tmp/x", Time: at}, "tmpx-x.wav", nil},
		{"double slashes", "a//b///{{ srcnum }}", v, "a/b/1001.wav", nil},
		{"allowed absolute", allowed + "/{{ srcnum }}", v, allowed + "/1001.wav", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNamer(t, Options{Template: tc.template, Root: root, AllowedDirs: []string{allowed}})
			got, err := n.Name(tc.v)
			want := tc.want
			if !filepath.IsAbs(want) {
				want = filepath.Join(root, want)
			}
			if !errors.Is(err, tc.err) || err == nil && got != want {
				t.Fatalf("Name = %q, %v; want %q, %v", got, err, want, tc.err)
			}
		})
	}
}

// TestConfigErrors: what tapedeck -t reports.
func TestConfigErrors(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name string
		o    Options
		err  error
		msg  string
	}{
		{"does not parse", Options{Template: "{{ srcnum "}, ErrTemplate, "bad filename template"},
		{"unclosed block", Options{Template: "{% if srcnum %}x"}, ErrTemplate, ""},
		{"unknown variable", Options{Template: "{{ callerid }}"}, ErrTemplate, "callerid"},
		{"unknown variable in a filter", Options{Template: "{{ srcnum | default(nosuch) }}-{{ nosuch2 }}"}, ErrTemplate, ""},
		{"unknown filter", Options{Template: "{{ srcnum | nosuchfilter }}"}, ErrTemplate, ""},
		{"global functions are not offered", Options{Template: "{% for i in range(3) %}{{ i }}{% endfor %}"}, ErrTemplate, ""},
		{"no other templates", Options{Template: "{% include '/etc/passwd' %}"}, ErrTemplate, ""},
		{"absolute, not allowed", Options{Template: "/home/pcm/call/{{ srcnum }}"}, ErrOutside, "/home/pcm/call/1001.wav"},
		{"absolute, outside the allowed", Options{Template: "/home/other/{{ srcnum }}", AllowedDirs: []string{"/home/pcm"}}, ErrOutside, ""},
		{"allowed prefix is not a parent", Options{Template: "/home/pcm2/{{ srcnum }}", AllowedDirs: []string{"/home/pcm"}}, ErrOutside, ""},
		{"relative allowed directory", Options{AllowedDirs: []string{"calls"}}, nil, "not absolute"},
		{"unknown extension", Options{Extension: "exe"}, nil, `filename_extension "exe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Root = root
			_, err := New(tc.o)
			if err == nil || tc.err != nil && !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("New(%+v) = %v; want %v containing %q", tc.o, err, tc.err, tc.msg)
			}
		})
	}
	for _, ext := range []string{"wav", "gsm", "sln"} {
		if _, err := New(Options{Extension: ext, Root: root}); err != nil && ext == "wav" {
			t.Fatalf("extension %s: %v", ext, err)
		}
	}
}

// TestNoOverwrite: a taken name gets a suffix, from a file on disk or
// from another call named a moment earlier.
func TestNoOverwrite(t *testing.T) {
	root := t.TempDir()
	n := mustNamer(t, Options{Root: root})
	first, err := n.Name(vars())
	if err != nil {
		t.Fatal(err)
	}
	second, _ := n.Name(vars()) // reserved, not yet on disk
	if err := os.WriteFile(first, []byte("earlier recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Release(first)
	third, _ := n.Name(vars()) // first is on disk, second reserved
	want := []string{"user-1001-1002-1796408122.wav", "user-1001-1002-1796408122-1.wav", "user-1001-1002-1796408122-2.wav"}
	for i, got := range []string{first, second, third} {
		if got != filepath.Join(root, want[i]) {
			t.Errorf("name %d = %s; want %s", i, got, want[i])
		}
	}
	if data, _ := os.ReadFile(first); string(data) != "earlier recording" {
		t.Fatal("the earlier recording was touched")
	}
	n.Release(second)
	n.Release(third)
	if again, _ := n.Name(vars()); again != second {
		t.Fatalf("after release: %s; want %s", again, second)
	}
}

// TestSymlinkEscape: a directory under the root that is a link to
// elsewhere is refused.
func TestSymlinkEscape(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "tenant")); err != nil {
		t.Skip(err)
	}
	n := mustNamer(t, Options{Root: root, Template: "{{ base_context }}/{{ srcnum }}"})
	v := vars()
	v.BaseContext = "tenant"
	if got, err := n.Name(v); !errors.Is(err, ErrOutside) {
		t.Fatalf("Name through a symlink out = %q, %v; want ErrOutside", got, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "inside", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "inside"), filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	v.BaseContext = "alias"
	if _, err := n.Name(v); err != nil {
		t.Fatalf("a link that stays inside: %v", err)
	}
}

func TestRel(t *testing.T) {
	root := t.TempDir()
	n := mustNamer(t, Options{Root: root, Template: "{{ tenant_uuid }}/x"})
	p, _ := n.Name(vars())
	if rel, ok := n.Rel(p); !ok || rel != "3f2504e0-4f89-41d3-9a0c-0305e82c3301/x.wav" {
		t.Fatalf("Rel(%s) = %q %v", p, rel, ok)
	}
	if _, ok := n.Rel("/elsewhere/x.wav"); ok {
		t.Fatal("Rel of a path outside the root")
	}
}

func BenchmarkName(b *testing.B) {
	n, err := New(Options{Root: b.TempDir(), Template: "{{ tenant_uuid }}/{{ utc_time }}-{{ srcnum }}-{{ dstnum }}"})
	if err != nil {
		b.Fatal(err)
	}
	v := vars()
	b.ReportAllocs()
	for b.Loop() {
		p, err := n.Name(v)
		if err != nil {
			b.Fatal(err)
		}
		n.Release(p)
	}
}

// TestTemplateSandbox: a template cannot stop the server or run for long,
// whatever the caller's values. Without the sandbox the first two crash
// the test binary (a stack overflow, and an allocation of terabytes for a
// caller id of "1e12"), which no recover catches.
func TestTemplateSandbox(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct{ name, template, msg string }{
		{"a recursive macro", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "macro"},
		{"string repetition by a caller's value", "{{ dstnum * srcnum }}", "operator *"},
		{"a recursive loop", "{% for c in srcnum recursive %}{{ loop(c) }}{% endfor %}", "recursive"},
		{"a block calling itself", "{% block b %}{{ self.b() }}{% endblock %}", "block"},
		{"set chains", "{% set a = srcnum ~ srcnum %}{% set a = a ~ a %}{{ a }}", "set"},
		{"with", "{% with a = srcnum %}{{ a }}{% endwith %}", "with"},
		{"calling a name", "{{ caller() }}", "only string methods"},
		{"loops three deep", "{% for a in srcnum %}{% for b in srcnum %}{% for c in srcnum %}{% endfor %}{% endfor %}{% endfor %}", "nested more than 2"},
		{"a padding filter", "{{ srcnum | center(9) }}", "center"},
		{"a padding method", "{{ srcnum.zfill(9) }}", "zfill"},
		{"even where the sample calls do not go", "{% if false %}{{ srcnum | indent(9) }}{% endif %}", "filter indent"},
		{"statements named", "{% set a = 1 %}", "statements are if, for, raw, break, continue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Template: tc.template, Root: root})
			if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("New(%q) = %v; want ErrTemplate mentioning %q", tc.template, err, tc.msg)
			}
		})
	}

	// Allowed templates, hostile values: an error (the call is then
	// recorded under the default name) or a bounded name, never a crash.
	long := strings.Repeat("9", 300)
	for _, tc := range []struct {
		name, template string
		v              NameVars
		want           string // the file name under root; "" for ErrTemplate
	}{
		{"a caller's value is cut to 128 bytes", "{{ srcnum }}", NameVars{SrcNum: long, Time: at}, long[:maxVar] + ".wav"},
		{"cut on a character boundary", "x{{ srcnum }}", NameVars{SrcNum: strings.Repeat("a", maxVar-1) + "é", Time: at}, "x" + strings.Repeat("a", maxVar-1) + ".wav"},
		{"a filter's result over the bound", "{{ srcnum | replace('', dstnum) }}", NameVars{SrcNum: long, DstNum: long, Time: at}, ""},
		{"a method's result over the bound", "{{ srcnum.replace('9', dstnum, -1) }}", NameVars{SrcNum: long, DstNum: long, Time: at}, ""},
		{"a name over 4096 bytes", "{% for a in srcnum %}{% for b in srcnum %}{{ a }}{% endfor %}{% endfor %}", NameVars{SrcNum: long, Time: at}, ""},
		{"a caller's huge width", "{{ '%*d' | format(srcnum | int, 7) }}", NameVars{SrcNum: "1e12", Time: at}, "BADWIDTH7.wav"},
		{"a caller's huge precision", "{{ timestamp | round(srcnum | int) }}", NameVars{SrcNum: "1e12", Time: at}, "NaN.wav"},
		{"a caller's huge length", "{{ dstnum | truncate((srcnum | int) + 3) }}", NameVars{SrcNum: "1e18", DstNum: "1002", Time: at}, "1002.wav"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNamer(t, Options{Template: tc.template, Root: root})
			got, err := n.Name(tc.v)
			if tc.want == "" {
				if !errors.Is(err, ErrTemplate) {
					t.Fatalf("Name = %q, %v; want ErrTemplate", got, err)
				}
				return
			}
			if err != nil || got != filepath.Join(root, tc.want) {
				t.Fatalf("Name = %q, %v; want %s", got, err, tc.want)
			}
			n.Release(got)
		})
	}
}

// TestDefaultName: the fallback name stays one valid name under the root
// whatever the caller's values.
func TestDefaultName(t *testing.T) {
	for _, tc := range []struct{ src, dst, want string }{
		{"1001", "1002", "user-1001-1002-1796408122"},
		{"../../etc", "a/b", "user-etc-ab-1796408122"},
		{"pépé:*", strings.Repeat("9", 300), "user-pepe-" + strings.Repeat("9", maxVar) + "-1796408122"},
	} {
		if got := DefaultName(tc.src, tc.dst, at); got != tc.want {
			t.Errorf("DefaultName(%q, %q) = %q; want %q", tc.src, tc.dst, got, tc.want)
		}
	}
}
