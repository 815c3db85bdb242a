// Package recname names the files of calls recorded by policy, as Wazo's
// call_recording does (seed 002): a Jinja2 template
// (call_recording.filename_template, real Jinja2 syntax through gonja)
// rendered with the call's variables, then Wazo's post-processing —
// transliterated to ASCII (unidecode), every character but letters, digits,
// "/", "-", "_" and space dropped, an empty result replaced by the Unix
// time — and "." plus the extension (call_recording.filename_extension).
//
// tapedeck adds what a server on the Internet needs: a relative name lands
// under the recordings root, an absolute one only under a directory the
// operator allows; the caller-controlled values (srcnum, dstnum, ...) cannot
// add directories ("/" is removed from them); symlinks cannot lead out; and
// a name already taken gets a suffix (-1, -2, ...) instead of overwriting
// an earlier recording.
package recname

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mozillazg/go-unidecode"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"

	"github.com/tapedeck/tapedeck/internal/recorder"
)

// Defaults of call_recording.filename_template and filename_extension
// (Wazo's).
const (
	DefaultTemplate  = "user-{{ srcnum }}-{{ dstnum }}-{{ timestamp }}"
	DefaultExtension = "wav"
)

// Variables lists the names a template may use.
var Variables = []string{"srcnum", "dstnum", "timestamp", "local_time", "utc_time", "base_context", "tenant_uuid"}

// Errors.
var (
	// ErrTemplate: the template does not parse, or uses a variable that is
	// not one of Variables.
	ErrTemplate = errors.New("recname: bad filename template")
	// ErrOutside: the name would leave the recordings root and the allowed
	// directories.
	ErrOutside = errors.New("recname: file name outside the recordings root and the allowed directories")
)

// NameVars are one call's values for the template.
type NameVars struct {
	SrcNum      string    // the caller's number (caller id)
	DstNum      string    // the called extension
	Time        time.Time // gives timestamp, local_time and utc_time
	BaseContext string    // the context the call entered the dialplan in
	TenantUUID  string    // the tenant of the user, or of the outgoing call
}

// Options configure a Namer.
type Options struct {
	Template  string // default DefaultTemplate
	Extension string // default DefaultExtension; a recorder format
	// Root is the recordings root, where relative names land.
	Root string
	// AllowedDirs are absolute directories an absolute name may land in.
	AllowedDirs []string
	// Location is the server's time zone for local_time (default
	// time.Local).
	Location *time.Location
}

// Namer renders file names. It is safe for concurrent use.
type Namer struct {
	tpl *exec.Template
	// absolute: the template's own text starts with "/". Only then is a
	// name absolute; a "/" that a variable's emptiness leaves in front
	// ("{{ tenant_uuid }}/..." without a tenant) does not make it so.
	absolute bool
	ext      string
	root     string
	allowed  []string
	loc      *time.Location

	mu       sync.Mutex
	reserved map[string]time.Time // names handed out, until their file exists
}

// reserveFor is how long a handed-out name is kept from others while its
// recording's file is being created.
const reserveFor = time.Minute

// oneTemplate is a gonja loader that knows only the template itself:
// {% include %}, {% import %} and {% extends %} read no files.
type oneTemplate struct{ src string }

const rootName = "filename_template"

func (l oneTemplate) Read(path string) (io.Reader, error) {
	if path != rootName {
		return nil, fmt.Errorf("templates cannot load other templates (%q)", path)
	}
	return strings.NewReader(l.src), nil
}

func (l oneTemplate) Resolve(path string) (string, error) { return path, nil }

func (l oneTemplate) Inherit(string) (loaders.Loader, error) { return l, nil }

var _ loaders.Loader = oneTemplate{}

// environment is the sandbox's (sandbox.go): no global functions (range,
// lipsum, cycler...), only the statements, filters and methods a file name
// needs.
func environment() *exec.Environment {
	e := *sandbox
	e.Context = exec.EmptyContext()
	return &e
}

// Parse compiles a template: ErrTemplate when it does not parse.
func Parse(src string) (tpl *exec.Template, err error) {
	defer func() {
		if p := recover(); p != nil { // a template engine bug is a bad template, not a crash
			tpl, err = nil, fmt.Errorf("%w %q: %v", ErrTemplate, src, p)
		}
	}()
	cfg := config.New()
	cfg.StrictUndefined = true // an unknown variable is an error, not ""
	tpl, err = exec.NewTemplate(rootName, cfg, oneTemplate{src}, environment())
	if err != nil {
		if strings.Contains(err.Error(), "ControlStructure '") {
			err = fmt.Errorf("%v; a file name template's statements are %s", err, strings.Join(statements, ", "))
		}
		return nil, fmt.Errorf("%w %q: %v", ErrTemplate, src, err)
	}
	if err := check(tpl.Root()); err != nil {
		return nil, fmt.Errorf("%w %q: not allowed in a file name template: %v", ErrTemplate, src, err)
	}
	return tpl, nil
}

// New compiles and checks the configuration: the template parses and
// renders with sample values (an unknown variable fails it), the extension
// is a recording format, the allowed directories are absolute, and the
// sample name stays where it may.
func New(o Options) (*Namer, error) {
	if o.Template == "" {
		o.Template = DefaultTemplate
	}
	if o.Extension == "" {
		o.Extension = DefaultExtension
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if _, err := recorder.Lookup(o.Extension); err != nil {
		return nil, fmt.Errorf("recname: filename_extension %q: %w", o.Extension, err)
	}
	var errs []error
	n := &Namer{ext: o.Extension, loc: o.Location, reserved: map[string]time.Time{}}
	if o.Root != "" {
		n.root = filepath.Clean(o.Root)
		if abs, err := filepath.Abs(n.root); err == nil {
			n.root = abs
		}
	}
	for _, d := range o.AllowedDirs {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("recname: allowed directory %q is not absolute", d))
			continue
		}
		n.allowed = append(n.allowed, filepath.Clean(d))
	}
	tpl, err := Parse(o.Template)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	n.tpl = tpl
	n.absolute = strings.HasPrefix(strings.TrimSpace(o.Template), "/")
	// Two sample calls exercise the template (and both branches of a
	// simple {% if %} on a variable being empty).
	for _, v := range []NameVars{
		{SrcNum: "1001", DstNum: "1002", Time: time.Unix(1733300000, 0), BaseContext: "default", TenantUUID: "00000000-0000-4000-8000-000000000001"},
		{Time: time.Unix(0, 0)},
	} {
		if _, err := n.render(v); err != nil {
			errs = append(errs, err)
			break
		}
		if p, err := n.path(n.mustRender(v), v.Time); err != nil {
			errs = append(errs, fmt.Errorf("%w: template %q gives %q", ErrOutside, o.Template, p))
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return n, nil
}

// Extension is the file extension (the recording format).
func (n *Namer) Extension() string { return n.ext }

// Root is the recordings root.
func (n *Namer) Root() string { return n.root }

// clean removes what a caller-controlled value must not bring into a path.
func clean(s string) string { return strings.ReplaceAll(s, "/", "") }

// context builds the template's variables as wazo-agid does.
func (n *Namer) context(v NameVars) *exec.Context {
	t := v.Time
	if t.IsZero() {
		t = time.Now()
	}
	return exec.NewContext(map[string]any{
		"srcnum":       clean(cut(v.SrcNum)),
		"dstnum":       clean(cut(v.DstNum)),
		"timestamp":    t.Unix(),
		"local_time":   asctime(t.In(n.loc)),
		"utc_time":     asctime(t.UTC()),
		"base_context": clean(cut(v.BaseContext)),
		"tenant_uuid":  clean(cut(v.TenantUUID)),
	})
}

// asctime is Python's time.asctime: "Fri Dec  4 18:15:22 2026".
func asctime(t time.Time) string { return t.Format("Mon Jan _2 15:04:05 2006") }

// render runs the template and Wazo's post-processing, without the
// extension.
func (n *Namer) render(v NameVars) (name string, err error) {
	defer func() {
		if p := recover(); p != nil {
			name, err = "", fmt.Errorf("%w: %v", ErrTemplate, p)
		}
	}()
	var w limitWriter
	err = n.tpl.Execute(&w, n.context(v))
	out := w.String()
	if err != nil {
		return "", fmt.Errorf("%w: %v (variables: %s)", ErrTemplate, err, strings.Join(Variables, ", "))
	}
	return PostProcess(out), nil
}

func (n *Namer) mustRender(v NameVars) string {
	s, _ := n.render(v)
	return s
}

// PostProcess is Wazo's CallRecordingNameGenerator cleaning: unidecode to
// ASCII, then only letters, digits, "/", "-", "_" and space kept.
func PostProcess(s string) string {
	ascii := unidecode.Unidecode(s)
	var b strings.Builder
	for i := 0; i < len(ascii); i++ {
		c := ascii[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '-' || c == '_' || c == ' ' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DefaultName is the name a policy recording gets when the template fails
// at a call: Wazo's default template, user-<srcnum>-<dstnum>-<timestamp>,
// with the same cleaning of the caller's values, so that it is always a
// valid name under the recordings root.
func DefaultName(src, dst string, t time.Time) string {
	return PostProcess(fmt.Sprintf("user-%s-%s-%d", clean(cut(src)), clean(cut(dst)), t.Unix()))
}

// unixTime is Python's str(time.time()): the empty name's replacement.
func unixTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMicro())/1e6, 'f', -1, 64)
}

// maxComponent bounds each path component (file systems allow 255 bytes;
// room is left for a suffix and the extension).
const maxComponent = 200

// path turns a post-processed name into the file's absolute path (with
// the extension, before any collision suffix) and checks where it lands.
func (n *Namer) path(name string, t time.Time) (string, error) {
	if t.IsZero() {
		t = time.Now()
	}
	abs := n.absolute
	parts := strings.Split(name, "/")
	kept := parts[:0]
	for _, p := range parts {
		if p == "" {
			continue
		}
		if len(p) > maxComponent {
			p = p[:maxComponent]
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 || strings.HasSuffix(name, "/") {
		// Nothing left, or a directory without a file name: the Unix time,
		// as Wazo names an empty result.
		kept = append(kept, unixTime(t))
	}
	rel := filepath.Join(kept...) + "." + n.ext
	var full string
	if abs {
		full = filepath.Join("/", rel)
		if !n.under(full, n.allowed...) {
			return full, ErrOutside
		}
	} else {
		if n.root == "" {
			return rel, fmt.Errorf("%w: no recordings root", ErrOutside)
		}
		full = filepath.Join(n.root, rel)
	}
	return full, nil
}

// under reports whether path is inside one of dirs.
func (n *Namer) under(path string, dirs ...string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// base is the directory a path must stay in: the recordings root or the
// allowed directory holding it.
func (n *Namer) base(path string) string {
	if n.root != "" && n.under(path, n.root) {
		return n.root
	}
	for _, d := range n.allowed {
		if n.under(path, d) {
			return d
		}
	}
	return ""
}

// noSymlinkEscape checks that the deepest existing directory of path,
// symlinks resolved, is still inside its base (itself resolved).
func (n *Namer) noSymlinkEscape(path string) error {
	base := n.base(path)
	if base == "" {
		return ErrOutside
	}
	rb, err := filepath.EvalSymlinks(base)
	if err != nil {
		return nil // the base does not exist yet: nothing below it can be a link
	}
	dir := filepath.Dir(path)
	for {
		if _, err := os.Lstat(dir); err == nil {
			break
		}
		if dir == base || dir == "/" {
			return nil
		}
		dir = filepath.Dir(dir)
	}
	rd, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("recname: %s: %w", dir, err)
	}
	if rd != rb && !strings.HasPrefix(rd, strings.TrimSuffix(rb, "/")+"/") {
		return fmt.Errorf("%w: %s leads to %s", ErrOutside, dir, rd)
	}
	return nil
}

// Name renders the file name of one call's recording: an absolute path,
// with the extension, that no file and no other recent Name holds. A taken
// name gets "-1", "-2", ... before the extension. The caller creates the
// file without overwriting (recorder.Fail) and, should that still find a
// file (another process), asks again. Errors: ErrTemplate (a variable the
// template needs in a branch the checks at load did not take) and
// ErrOutside; a call should then be recorded under DefaultTemplate.
func (n *Namer) Name(v NameVars) (string, error) {
	if v.Time.IsZero() {
		v.Time = time.Now()
	}
	name, err := n.render(v)
	if err != nil {
		return "", err
	}
	full, err := n.path(name, v.Time)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, full)
	}
	if err := n.noSymlinkEscape(full); err != nil {
		return "", err
	}
	stem := strings.TrimSuffix(full, "."+n.ext)
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for p, at := range n.reserved {
		if now.Sub(at) > reserveFor {
			delete(n.reserved, p)
		}
	}
	for i := 0; i < 100000; i++ {
		cand := full
		if i > 0 {
			cand = stem + "-" + strconv.Itoa(i) + "." + n.ext
		}
		if _, held := n.reserved[cand]; held {
			continue
		}
		if _, err := os.Lstat(cand); err == nil || !errors.Is(err, os.ErrNotExist) {
			continue
		}
		n.reserved[cand] = now
		return cand, nil
	}
	return "", fmt.Errorf("recname: no free name for %s", full)
}

// Release forgets a name handed out by Name once its file exists (or the
// recording was not made), so the reservation table stays small.
func (n *Namer) Release(path string) {
	n.mu.Lock()
	delete(n.reserved, path)
	n.mu.Unlock()
}

// Rel is path relative to the recordings root, when it is inside it.
func (n *Namer) Rel(path string) (string, bool) {
	if n.root == "" || !n.under(path, n.root) {
		return "", false
	}
	r, err := filepath.Rel(n.root, path)
	return r, err == nil
}
