package ozeki

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// OzML: an application's XML answer to a notification,
// <?xml version="1.0"?><Response>verbs...</Response>, run verb by verb.

// MaxDocument bounds an OzML document's size; MaxVerbs its verbs.
const (
	MaxDocument = 64 << 10
	MaxVerbs    = 200
)

// Verb is one OzML instruction.
type Verb struct {
	// Name as Ozeki spells it (Speak, Record, ...).
	Name string
	// Attrs by lower-cased name.
	Attrs params
	// Text is the element's text, trimmed.
	Text string
	// Prompt: the verbs nested in UserInput (its prompt).
	Prompt []Verb
}

// Document is a parsed OzML document.
type Document struct{ Verbs []Verb }

// ErrOzML: the document is not valid OzML.
var ErrOzML = errors.New("ozml")

// verbAttrs lists each verb's attributes (lower case).
var verbAttrs = map[string][]string{
	"Speak":     {"voice", "language"},
	"Play":      {"url"},
	"Record":    {"callid", "duration", "finishdigits", "finishedurl", "format", "inactivity", "recordpath"},
	"Delay":     {},
	"Hangup":    {},
	"Reject":    {"reason"},
	"SendDTMF":  {"dtmf"},
	"UserInput": {"url", "timeout", "maxdigits", "finishdigits", "repeat"},
	"Forward":   {"timeout", "callerid"},
	"Call":      {"timeout", "callerid"},
	// Prompt wrapper inside UserInput.
	"InitialPrompt": {},
}

// canonicalVerb finds a verb's name case-insensitively.
func canonicalVerb(name string) (string, bool) {
	for v := range verbAttrs {
		if strings.EqualFold(v, name) {
			return v, true
		}
	}
	return "", false
}

// ParseOzML parses and checks a document: the root is Response, every verb
// and attribute is known, UserInput alone has nested verbs (Speak or Play,
// optionally inside InitialPrompt).
func ParseOzML(b []byte) (*Document, error) {
	if len(b) > MaxDocument {
		return nil, fmt.Errorf("%w: document over %d bytes", ErrOzML, MaxDocument)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	// Entities other than XML's five are refused (no expansion attacks).
	d.Entity = map[string]string{}
	var doc Document
	var stack []*Verb // open verbs; nil entry: the Response root
	rootSeen, rootClosed := false, false
	count := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: not XML: %v", ErrOzML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !rootSeen {
				if t.Name.Local != "Response" {
					return nil, fmt.Errorf("%w: root element <%s>, want <Response>", ErrOzML, t.Name.Local)
				}
				rootSeen = true
				stack = append(stack, nil)
				continue
			}
			if rootClosed {
				return nil, fmt.Errorf("%w: content after </Response>", ErrOzML)
			}
			name, ok := canonicalVerb(t.Name.Local)
			if !ok {
				return nil, fmt.Errorf("%w: unknown verb <%s>", ErrOzML, t.Name.Local)
			}
			parent := stack[len(stack)-1]
			switch {
			case parent == nil && name == "InitialPrompt":
				return nil, fmt.Errorf("%w: <InitialPrompt> outside <UserInput>", ErrOzML)
			case parent != nil && parent.Name == "UserInput" && (name == "InitialPrompt" || name == "Speak" || name == "Play"):
			case parent != nil && parent.Name == "InitialPrompt" && (name == "Speak" || name == "Play"):
			case parent != nil:
				return nil, fmt.Errorf("%w: <%s> inside <%s>", ErrOzML, name, parent.Name)
			}
			count++
			if count > MaxVerbs {
				return nil, fmt.Errorf("%w: more than %d verbs", ErrOzML, MaxVerbs)
			}
			v := &Verb{Name: name, Attrs: params{}}
			for _, at := range t.Attr {
				if at.Name.Space == "xmlns" || at.Name.Local == "xmlns" {
					continue
				}
				k := strings.ToLower(at.Name.Local)
				known := false
				for _, a := range verbAttrs[name] {
					if a == k {
						known = true
					}
				}
				if !known {
					return nil, fmt.Errorf("%w: unknown attribute %s of <%s>", ErrOzML, at.Name.Local, name)
				}
				v.Attrs[k] = at.Value
			}
			stack = append(stack, v)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: unbalanced </%s>", ErrOzML, t.Name.Local)
			}
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if v == nil {
				rootClosed = true
				continue
			}
			v.Text = strings.TrimSpace(v.Text)
			parent := stack[len(stack)-1]
			switch {
			case parent == nil:
				doc.Verbs = append(doc.Verbs, *v)
			case v.Name == "InitialPrompt":
				parent.Prompt = append(parent.Prompt, v.Prompt...)
			default:
				parent.Prompt = append(parent.Prompt, *v)
			}
		case xml.CharData:
			if len(stack) == 0 || stack[len(stack)-1] == nil {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("%w: text outside a verb", ErrOzML)
				}
				continue
			}
			v := stack[len(stack)-1]
			if len(v.Text)+len(t) > MaxDocument {
				return nil, fmt.Errorf("%w: text too long", ErrOzML)
			}
			v.Text += string(t)
		case xml.Directive:
			return nil, fmt.Errorf("%w: DTDs and directives are not allowed", ErrOzML)
		}
	}
	if !rootSeen || !rootClosed {
		return nil, fmt.Errorf("%w: no complete <Response> element", ErrOzML)
	}
	return &doc, nil
}
