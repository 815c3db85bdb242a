package recname

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// The template is the operator's; its values (srcnum, dstnum, ...) are the
// caller's. Rendering must stay cheap and finite whatever a caller sends,
// and a template must not be able to stop the server: gonja has no limits
// of its own (a recursive macro overflows the stack, 'ab' * srcnum with a
// caller id of "1e12" asks for terabytes, both fatal to the process, not
// panics a recover catches). So a filename template is a subset of Jinja2
// that a file name needs, checked when it is parsed:
//
//   - statements: if, for (not recursive, at most maxLoopDepth deep), raw,
//     break, continue. No macro, call, block, set, with, filter, include,
//     import, extends: nothing that recurses or builds values from values.
//   - no "*" (string repetition) and no calls but string methods;
//   - filters and string methods from a list of those whose output is about
//     the size of their input, each refusing inputs, arguments or results
//     longer than maxValue;
//   - caller values cut at maxVar bytes, the output at maxOutput.
//
// What falls outside is ErrTemplate at load (tapedeck -t), or at a call
// (the call is then recorded under the default name).
const (
	maxVar       = 128  // bytes of each caller value
	maxValue     = 4096 // bytes (or items) of any filter's or method's input, argument or result
	maxOutput    = 4096 // bytes of the rendered name (PATH_MAX)
	maxLoopDepth = 2
)

// statements are the control structures a filename template may use.
var statements = []string{"if", "for", "raw", "break", "continue"}

// filters are Jinja2's filters a filename template may use.
var filters = []string{
	"abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "format", "int",
	"join", "last", "length", "list", "lower", "max", "min", "replace", "reverse", "round", "sort",
	"string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
}

// strMethods are Python's string methods a filename template may call.
var strMethods = []string{
	"capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isascii", "isdecimal",
	"isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "partition",
	"removeprefix", "removesuffix", "replace", "rfind", "rpartition", "rsplit", "rstrip", "split",
	"startswith", "strip", "swapcase", "title", "upper",
}

// sandbox is the environment's parts, shared by every template (the sets
// are read-only after this).
var sandbox = func() *exec.Environment {
	cs := map[string]parser.ControlStructureParser{}
	for _, name := range statements {
		p, ok := controlStructures.All.Get(name)
		if !ok {
			panic("recname: gonja has no statement " + name)
		}
		cs[name] = p
	}
	fs := exec.NewFilterSet(map[string]exec.FilterFunction{})
	for _, name := range filters {
		f, ok := builtins.Filters.Get(name)
		if !ok {
			panic("recname: gonja has no filter " + name)
		}
		if err := fs.Register(name, boundedFilter(name, f)); err != nil {
			panic(err)
		}
	}
	str := map[string]exec.Method[string]{}
	for _, name := range strMethods {
		m, ok := builtins.Methods.Str.Get(name)
		if !ok {
			panic("recname: gonja has no string method " + name)
		}
		str[name] = boundedMethod(name, m)
	}
	return &exec.Environment{
		Context:           exec.EmptyContext(),
		Filters:           fs,
		Tests:             builtins.Tests,
		ControlStructures: exec.NewControlStructureSet(cs),
		Methods: exec.Methods{
			Bool:  exec.NewMethodSet(map[string]exec.Method[bool]{}),
			Int:   exec.NewMethodSet(map[string]exec.Method[int]{}),
			Float: exec.NewMethodSet(map[string]exec.Method[float64]{}),
			Str:   exec.NewMethodSet(str),
			Dict:  exec.NewMethodSet(map[string]exec.Method[map[string]any]{}),
			List:  exec.NewMethodSet(map[string]exec.Method[[]any]{}),
		},
	}
}()

// tooBig says why a value is over maxValue, or "".
func tooBig(v *exec.Value) string {
	if v == nil || v.IsError() {
		return ""
	}
	var n int
	switch {
	case v.IsString():
		n = len(v.String()) // bytes; gonja's Len copies the string into runes
	case v.IsList() || v.IsDict():
		n = v.Len()
	default:
		return ""
	}
	if n > maxValue {
		return fmt.Sprintf("a value of %d bytes or items (at most %d)", n, maxValue)
	}
	return ""
}

func argsTooBig(p *exec.VarArgs) string {
	for _, a := range p.Args {
		if s := tooBig(a); s != "" {
			return s
		}
	}
	for _, a := range p.KwArgs {
		if s := tooBig(a); s != "" {
			return s
		}
	}
	return ""
}

func boundedFilter(name string, f exec.FilterFunction) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		s := tooBig(in)
		if s == "" {
			s = argsTooBig(p)
		}
		if s == "" {
			out := f(e, in, p)
			if s = tooBig(out); s == "" {
				return out
			}
		}
		return exec.AsValue(fmt.Errorf("filter %s: %s", name, s))
	}
}

func boundedMethod(name string, m exec.Method[string]) exec.Method[string] {
	return func(self string, selfValue *exec.Value, p *exec.VarArgs) (any, error) {
		s := tooBig(selfValue)
		if s == "" {
			s = argsTooBig(p)
		}
		if s == "" {
			out, err := m(self, selfValue, p)
			if err != nil {
				return out, err
			}
			if s = tooBig(exec.AsValue(out)); s == "" {
				return out, nil
			}
		}
		return nil, fmt.Errorf("method %s: %s", name, s)
	}
}

// check refuses, in a parsed template, what the sandbox's environment
// cannot: recursive loops, loops nested deeper than maxLoopDepth, "*",
// and calls of anything but methods.
func check(root *nodes.Template) error {
	w := walker{seen: map[seenKey]bool{}}
	w.walk(reflect.ValueOf(root), 0)
	return w.err
}

type walker struct {
	seen map[seenKey]bool
	err  error
}

type seenKey struct {
	t reflect.Type
	p uintptr
}

var tokenType = reflect.TypeFor[*tokens.Token]()

func (w *walker) walk(v reflect.Value, loops int) {
	if w.err != nil || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		w.walk(v.Elem(), loops)
		return
	case reflect.Pointer:
		k := seenKey{v.Type(), v.Pointer()}
		if v.IsNil() || v.Type() == tokenType || w.seen[k] {
			return
		}
		w.seen[k] = true
		if v.CanInterface() {
			switch n := v.Interface().(type) {
			case *controlStructures.ForControlStructure:
				if n.Recursive {
					w.err = errors.New("a recursive for loop")
					return
				}
				if loops++; loops > maxLoopDepth {
					w.err = fmt.Errorf("for loops nested more than %d deep", maxLoopDepth)
					return
				}
			case *nodes.BinaryExpression:
				if n.Operator != nil && n.Operator.Token != nil && n.Operator.Token.Type == tokens.Multiply {
					w.err = fmt.Errorf("the operator * (%s): it repeats a string as many times as a number says", n)
					return
				}
			case *nodes.Call:
				ga, ok := n.Func.(*nodes.GetAttribute)
				if !ok {
					w.err = fmt.Errorf("a call of %s: only string methods can be called", n.Func)
					return
				}
				if name, ok := ga.Node.(*nodes.Name); ok && name.Name.Val == "loop" {
					break // loop.cycle(...), loop.changed(...)
				}
				if !slices.Contains(strMethods, ga.Attribute) {
					w.err = fmt.Errorf("the method %s (string methods allowed: %s)", ga.Attribute, strings.Join(strMethods, ", "))
					return
				}
			case *nodes.FilterCall:
				if !slices.Contains(filters, n.Name) {
					w.err = fmt.Errorf("the filter %s (filters allowed: %s)", n.Name, strings.Join(filters, ", "))
					return
				}
			}
		}
		w.walk(v.Elem(), loops)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			w.walk(v.Field(i), loops)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			w.walk(v.Index(i), loops)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			w.walk(it.Value(), loops)
		}
	}
}

// cut shortens a caller's value to maxVar bytes, on a character boundary.
func cut(s string) string {
	if len(s) <= maxVar {
		return s
	}
	i := maxVar
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// limitWriter collects the rendered name, refusing more than maxOutput
// bytes.
type limitWriter struct{ strings.Builder }

var errLong = fmt.Errorf("the rendered name is longer than %d bytes", maxOutput)

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > maxOutput {
		return 0, errLong
	}
	return w.Builder.Write(p)
}

func (w *limitWriter) WriteString(s string) (int, error) {
	if w.Len()+len(s) > maxOutput {
		return 0, errLong
	}
	return w.Builder.WriteString(s)
}
