package recname

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzTemplate renders arbitrary templates with arbitrary caller values.
// Whatever the input (numbers of any size included, in the template or a
// caller's values): no crash, no panic; a template New accepts gives names inside
// the recordings root or the allowed directory, made only of the kept
// characters, ending in ".wav", never a taken name.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		DefaultTemplate,
		"{{ tenant_uuid }}/{{ utc_time }}-{{ srcnum }}-{{ dstnum }}",
		"/allowed/user-{{ srcnum }}-{{ dstnum }}-{{ timestamp }}",
		"{% if srcnum %}{{ srcnum | lower }}{% else %}anon{% endif %}/{{ local_time }}",
		"{{ base_context ~ '/' ~ dstnum }}",
		"../../{{ srcnum }}/..",
		"{{ srcnum",
		"{% for c in srcnum %}{{ c }}/{% endfor %}",
		"{{ nosuch }}",
		"{{ dstnum * srcnum }}",
		"{{ srcnum | replace('', dstnum) }}-{{ '%*d' | format(srcnum | int, 7) }}",
		"{% for a in srcnum %}{% for b in dstnum %}{{ loop.cycle(a, b) }}{% endfor %}{% endfor %}",
		"",
	} {
		f.Add(s, "1001", "pépé/../x")
		f.Add(s, "1e12", strings.Repeat("9", 300))
	}
	root, allowed := f.TempDir(), "/allowed"
	f.Fuzz(func(t *testing.T, tpl, src, dst string) {
		if len(tpl) > 256 {
			t.Skip()
		}
		tpl = strings.ReplaceAll(tpl, "/allowed", allowed)
		n, err := New(Options{Template: tpl, Root: root, AllowedDirs: []string{allowed}, Location: time.UTC})
		if err != nil {
			if !errors.Is(err, ErrTemplate) && !errors.Is(err, ErrOutside) {
				t.Fatalf("New(%q): unexpected error kind: %v", tpl, err)
			}
			return
		}
		v := NameVars{SrcNum: src, DstNum: dst, Time: time.Unix(1796408122, 0), BaseContext: dst, TenantUUID: src}
		p1, err := n.Name(v)
		if err != nil {
			if !errors.Is(err, ErrTemplate) && !errors.Is(err, ErrOutside) {
				t.Fatalf("Name: unexpected error kind: %v", err)
			}
			return
		}
		p2, err := n.Name(v)
		if err != nil || p2 == p1 {
			t.Fatalf("second Name = %q, %v; first was %q", p2, err, p1)
		}
		for _, p := range []string{p1, p2} {
			if !strings.HasSuffix(p, ".wav") || filepath.Clean(p) != p {
				t.Fatalf("%q: not a clean .wav path", p)
			}
			if !strings.HasPrefix(p, root+"/") && !strings.HasPrefix(p, allowed+"/") {
				t.Fatalf("%q escapes %s and %s (template %q, src %q, dst %q)", p, root, allowed, tpl, src, dst)
			}
			base := strings.TrimPrefix(strings.TrimPrefix(p, root), allowed)
			if stem := strings.TrimSuffix(base, ".wav"); PostProcess(stem) != stem {
				t.Fatalf("%q holds characters Wazo drops", p)
			}
			for _, part := range strings.Split(strings.TrimPrefix(base, "/"), "/") {
				if part == "" || part == "." || part == ".." {
					t.Fatalf("%q has an empty or dot component", p)
				}
			}
		}
	})
}
