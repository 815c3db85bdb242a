package confd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
)

// maxBody bounds a confd request body.
const maxBody = 256 << 10

// Wazo's message for the deprecated flag sent with the new ones.
const msgDeprecatedCallRecord = "'call_record_enabled' is deprecated and incompatible with 'call_record_*_enabled' options"

// serveConfd routes /api/confd/1.1/{rest}.
func (a *API) serveConfd(w http.ResponseWriter, r *http.Request, rest string) {
	s, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "users":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			a.listUsers(w, r, s)
		case http.MethodPost:
			a.createUser(w, r, s)
		default:
			methodNotAllowed(w, "GET", "HEAD", "POST")
		}
	case len(parts) == 2 && parts[0] == "users" && parts[1] != "":
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
			a.userItem(w, r, s, parts[1])
		default:
			methodNotAllowed(w, "GET", "HEAD", "PUT", "DELETE")
		}
	case len(parts) == 2 && parts[0] == "extensions" && parts[1] == "features":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET", "HEAD")
			return
		}
		a.listFeatures(w, r, s)
	case len(parts) == 3 && parts[0] == "extensions" && parts[1] == "features" && parts[2] != "":
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPut:
			a.featureItem(w, r, s, parts[2])
		default:
			methodNotAllowed(w, "GET", "HEAD", "PUT")
		}
	default:
		confdError(w, http.StatusNotFound, "The requested URL was not found on the server.")
	}
}

// forbid answers a token without the right: 403.
func forbid(w http.ResponseWriter) {
	confdError(w, http.StatusForbidden, "Insufficient permissions: this token may not do that")
}

// ----------------------------------------------------------- JSON out

func (a *API) link(r *http.Request, rel, path string) []map[string]string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := strings.TrimSuffix(ConfdPrefix, "/")
	if strings.HasPrefix(r.URL.Path, ConfdDirectPrefix) {
		prefix = strings.TrimSuffix(ConfdDirectPrefix, "/")
	}
	return []map[string]string{{"rel": rel, "href": scheme + "://" + r.Host + prefix + path}}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// userJSON is a user as wazo-confd's UserSchema dumps it. tapedeck keeps a
// user's number and phone credentials on the user itself; they are shown
// both as Wazo shows them (lines[0].extensions, lines[0].endpoint_sip) and
// as tapedeck's own fields exten, context and sip_username. Passwords are
// never shown.
func (a *API) userJSON(r *http.Request, u users.User) map[string]any {
	lines := []any{}
	if u.Exten != "" || u.SIPUsername != "" {
		line := map[string]any{"id": u.ID, "name": nullable(u.SIPUsername), "endpoint_sip": nil,
			"endpoint_sccp": nil, "endpoint_custom": nil, "extensions": []any{}}
		if u.SIPUsername != "" {
			line["endpoint_sip"] = map[string]any{"username": u.SIPUsername, "name": u.SIPUsername}
		}
		if u.Exten != "" {
			line["extensions"] = []any{map[string]any{"exten": u.Exten, "context": u.Context}}
		}
		lines = append(lines, line)
	}
	off := func() map[string]any { return map[string]any{"enabled": false, "destination": nil} }
	return map[string]any{
		"id":                                    u.ID,
		"uuid":                                  u.UUID,
		"tenant_uuid":                           u.TenantUUID,
		"firstname":                             u.Firstname,
		"lastname":                              nullable(u.Lastname),
		"email":                                 nullable(u.Email),
		"username":                              nullable(u.Username),
		"mobile_phone_number":                   nullable(u.MobilePhoneNumber),
		"call_record_enabled":                   u.CallRecordEnabled(),
		"call_record_outgoing_external_enabled": u.CallRecordOutgoingExternal,
		"call_record_outgoing_internal_enabled": u.CallRecordOutgoingInternal,
		"call_record_incoming_external_enabled": u.CallRecordIncomingExternal,
		"call_record_incoming_internal_enabled": u.CallRecordIncomingInternal,
		"online_call_record_enabled":            u.OnlineCallRecord,
		"enabled":                               true,
		"created_at":                            u.Created.UTC().Format("2006-01-02T15:04:05.000000+00:00"),
		"exten":                                 nullable(u.Exten),
		"context":                               u.Context,
		"sip_username":                          nullable(u.SIPUsername),
		"lines":                                 lines,
		"forwards":                              map[string]any{"busy": off(), "noanswer": off(), "unconditional": off()},
		"services":                              map[string]any{"dnd": map[string]any{"enabled": false}, "incallfilter": map[string]any{"enabled": false}},
		"incalls":                               []any{},
		"groups":                                []any{},
		"switchboards":                          []any{},
		"queues":                                []any{},
		"call_pickup_target_users":              []any{},
		"voicemail":                             nil,
		"agent":                                 nil,
		"links":                                 a.link(r, "users", "/users/"+strconv.FormatInt(u.ID, 10)),
	}
}

// ------------------------------------------------------------ JSON in

// readObject reads a JSON object body as raw fields; on failure it has
// answered 400.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		confdError(w, http.StatusBadRequest, "Failed to read the request body")
		return nil, false
	}
	if len(data) > maxBody {
		confdError(w, http.StatusRequestEntityTooLarge, "Request body larger than "+strconv.Itoa(maxBody)+" bytes")
		return nil, false
	}
	trimmed := bytes.TrimSpace(data)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		if len(trimmed) > 0 && trimmed[0] != '{' && json.Valid(trimmed) {
			confdError(w, http.StatusBadRequest, fieldErrors{"_schema": {"Invalid input type."}})
			return nil, false
		}
		confdError(w, http.StatusBadRequest, "Failed to decode JSON object: "+err.Error())
		return nil, false
	}
	if fields == nil { // the body was null
		confdError(w, http.StatusBadRequest, fieldErrors{"_schema": {"Invalid input type."}})
		return nil, false
	}
	return fields, true
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// strictBool is wazo-confd's StrictBoolean: JSON true or false only.
func strictBool(fe fieldErrors, fields map[string]json.RawMessage, name string) *bool {
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	if isNull(raw) {
		fe.add(name, "Field may not be null.")
		return nil
	}
	var b bool
	if json.Unmarshal(raw, &b) != nil {
		fe.add(name, "Not a valid boolean.")
		return nil
	}
	return &b
}

// str reads a string field; null is "" when nullable, else an error.
func str(fe fieldErrors, fields map[string]json.RawMessage, name string, nullableField bool, maxLen int) *string {
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	if isNull(raw) {
		if !nullableField {
			fe.add(name, "Field may not be null.")
			return nil
		}
		empty := ""
		return &empty
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		fe.add(name, "Not a valid string.")
		return nil
	}
	if maxLen > 0 && len(s) > maxLen {
		fe.add(name, "Longer than maximum length "+strconv.Itoa(maxLen)+".")
		return nil
	}
	return &s
}

// userForm is a parsed user body: the fields it names.
type userForm struct {
	firstname, lastname, email, username, password, mobile *string
	exten, context, sipUsername, sipPassword               *string
	recordAll                                              *bool
	outExt, outInt, inExt, inInt, online                   *bool
}

// recording reports whether the form changes recording flags.
func (f *userForm) recording() bool {
	return f.recordAll != nil || f.outExt != nil || f.outInt != nil || f.inExt != nil || f.inInt != nil || f.online != nil
}

// parseUser reads a user body as wazo-confd's UserSchema loads it: known
// fields strictly typed, unknown and read-only ones ignored. On failure it
// has answered 400.
func parseUser(w http.ResponseWriter, r *http.Request, create bool) (*userForm, bool) {
	fields, ok := readObject(w, r)
	if !ok {
		return nil, false
	}
	fe := fieldErrors{}
	f := &userForm{
		firstname:   str(fe, fields, "firstname", false, 128),
		lastname:    str(fe, fields, "lastname", true, 128),
		email:       str(fe, fields, "email", true, 254),
		username:    str(fe, fields, "username", true, 254),
		password:    str(fe, fields, "password", true, 64),
		mobile:      str(fe, fields, "mobile_phone_number", true, 80),
		exten:       str(fe, fields, "exten", true, 40),
		context:     str(fe, fields, "context", true, 79),
		sipUsername: str(fe, fields, "sip_username", true, 128),
		sipPassword: str(fe, fields, "sip_password", true, 128),
		recordAll:   strictBool(fe, fields, "call_record_enabled"),
		outExt:      strictBool(fe, fields, "call_record_outgoing_external_enabled"),
		outInt:      strictBool(fe, fields, "call_record_outgoing_internal_enabled"),
		inExt:       strictBool(fe, fields, "call_record_incoming_external_enabled"),
		inInt:       strictBool(fe, fields, "call_record_incoming_internal_enabled"),
		online:      strictBool(fe, fields, "online_call_record_enabled"),
	}
	if create && f.firstname == nil && len(fe["firstname"]) == 0 {
		fe.add("firstname", "Missing data for required field.")
	}
	if f.password != nil && *f.password != "" && len(*f.password) < 4 {
		fe.add("password", "String does not match expected pattern.")
	}
	if f.mobile != nil && *f.mobile != "" && !validPhone(*f.mobile) {
		fe.add("mobile_phone_number", "String does not match expected pattern.")
	}
	if len(fe) == 0 {
		// As UserSchema.validate_schema: the deprecated flag alone, or the
		// four, never both.
		_, all := fields["call_record_enabled"]
		for _, k := range []string{"call_record_outgoing_external_enabled", "call_record_outgoing_internal_enabled",
			"call_record_incoming_external_enabled", "call_record_incoming_internal_enabled"} {
			if raw, ok := fields[k]; ok && !isNull(raw) && all {
				fe.add("_schema", msgDeprecatedCallRecord)
				break
			}
		}
	}
	if len(fe) > 0 {
		confdError(w, http.StatusBadRequest, fe)
		return nil, false
	}
	return f, true
}

func validPhone(s string) bool {
	for i, c := range s {
		if !('0' <= c && c <= '9' || c == '*' || c == '#' || c == '+' && i == 0) {
			return false
		}
	}
	return s != "+"
}

// apply sets the form's fields on u.
func (a *API) apply(f *userForm, u *users.User) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&u.Firstname, f.firstname)
	set(&u.Lastname, f.lastname)
	set(&u.Email, f.email)
	set(&u.Username, f.username)
	set(&u.MobilePhoneNumber, f.mobile)
	set(&u.Exten, f.exten)
	set(&u.Context, f.context)
	set(&u.SIPUsername, f.sipUsername)
	set(&u.SIPPassword, f.sipPassword)
	if f.password != nil {
		if *f.password == "" {
			u.PasswordHash = ""
		} else {
			h, err := a.o.Users.HashPassword(*f.password)
			if err != nil {
				return err
			}
			u.PasswordHash = h
		}
	}
	if f.recordAll != nil {
		u.SetCallRecord(*f.recordAll)
	}
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setB(&u.CallRecordOutgoingExternal, f.outExt)
	setB(&u.CallRecordOutgoingInternal, f.outInt)
	setB(&u.CallRecordIncomingExternal, f.inExt)
	setB(&u.CallRecordIncomingInternal, f.inInt)
	setB(&u.OnlineCallRecord, f.online)
	return nil
}

// writeError answers a service error: a field problem or a conflict is
// 400, an unknown user 404.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error, u *users.User) {
	var fe *users.FieldError
	switch {
	case errors.As(err, &fe):
		out := fieldErrors{}
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				if errors.As(e, &fe) {
					out.add(fe.Field, fe.Msg)
				}
			}
		}
		if len(out) == 0 {
			out.add(fe.Field, fe.Msg)
		}
		confdError(w, http.StatusBadRequest, out)
	case errors.Is(err, meta.ErrConflict):
		confdError(w, http.StatusBadRequest, a.conflictMessage(r, u, err))
	case errors.Is(err, meta.ErrNotFound):
		confdError(w, http.StatusNotFound, notFound("User", "uuid", u.UUID))
	case errors.Is(err, meta.ErrInvalid):
		confdError(w, http.StatusBadRequest, "Input Error - "+err.Error())
	default:
		a.storeError(w, r, err)
	}
}

// conflictMessage names which unique value of u is taken.
func (a *API) conflictMessage(r *http.Request, u *users.User, err error) string {
	ctx := r.Context()
	if u == nil {
		return "Resource Error - " + err.Error()
	}
	uctx := u.Context
	if uctx == "" {
		uctx = "default"
	}
	if o, e := a.o.Users.ByExten(ctx, uctx, u.Exten); e == nil && o.UUID != u.UUID {
		return exists("Extension", "exten", u.Exten, "context", uctx)
	}
	if o, e := a.o.Users.BySIPUsername(ctx, u.SIPUsername); e == nil && o.UUID != u.UUID {
		return exists("EndpointSIP", "username", u.SIPUsername)
	}
	if u.Username != "" {
		return exists("User", "username", u.Username)
	}
	return "Resource Error - " + err.Error()
}

// ------------------------------------------------------------ handlers

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		forbid(w)
		return
	}
	see, _, ok := a.scope(w, r, s)
	if !ok {
		return
	}
	q, ok := listParams(w, r)
	if !ok {
		return
	}
	uq := users.Query{TenantUUIDs: see, Search: q.search, Order: q.order, Desc: q.desc, Limit: q.limit, Offset: q.offset}
	if uq.Order != "" && !slices.Contains(meta.UserOrderFields(), uq.Order) {
		confdError(w, http.StatusBadRequest, fieldErrors{"order": {"Must be one of: " + strings.Join(meta.UserOrderFields(), ", ") + "."}})
		return
	}
	page, err := a.o.Users.List(r.Context(), uq)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	items := make([]any, len(page.Items))
	for i, u := range page.Items {
		items[i] = a.userJSON(r, u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": page.Total})
}

// listQuery is wazo-confd's ListSchema.
type listQuery struct {
	search, order string
	desc          bool
	limit, offset int
}

func listParams(w http.ResponseWriter, r *http.Request) (listQuery, bool) {
	v := r.URL.Query()
	fe := fieldErrors{}
	q := listQuery{search: v.Get("search"), order: v.Get("order")}
	switch d := v.Get("direction"); d {
	case "", "asc":
	case "desc":
		q.desc = true
	default:
		fe.add("direction", "Must be one of: asc, desc.")
	}
	num := func(name string) int {
		s := v.Get(name)
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			fe.add(name, "Not a valid integer.")
			return 0
		}
		if n < 0 {
			fe.add(name, "Must be greater than or equal to 0.")
			return 0
		}
		return n
	}
	q.limit, q.offset = num("limit"), num("offset")
	if len(fe) > 0 {
		confdError(w, http.StatusBadRequest, fe)
		return q, false
	}
	return q, true
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		forbid(w)
		return
	}
	_, tenant, ok := a.scope(w, r, s)
	if !ok {
		return
	}
	f, ok := parseUser(w, r, true)
	if !ok {
		return
	}
	u := users.User{TenantUUID: tenant}
	if err := a.apply(f, &u); err != nil {
		a.writeError(w, r, err, &u)
		return
	}
	created, err := a.o.Users.Create(r.Context(), u)
	if err != nil {
		a.writeError(w, r, err, &u)
		return
	}
	w.Header().Set("Location", a.link(r, "users", "/users/"+strconv.FormatInt(created.ID, 10))[0]["href"])
	writeJSON(w, http.StatusCreated, a.userJSON(r, created))
}

// userItem serves GET/HEAD/PUT/DELETE /users/{id or uuid}. An admin
// reaches the users of the tenants it sees; a user reaches only itself
// (GET, HEAD, and PUT of its own profile: not its recording flags, which
// are the administrator's, nor its number or phone credentials).
func (a *API) userItem(w http.ResponseWriter, r *http.Request, s *session, key string) {
	see, _, ok := a.scope(w, r, s)
	if !ok {
		return
	}
	u, err := a.o.Users.Get(r.Context(), key)
	if err == nil && see != nil && !slices.Contains(see, u.TenantUUID) {
		err = meta.ErrNotFound // another tenant's user does not exist here
	}
	if errors.Is(err, meta.ErrNotFound) {
		k := "uuid"
		var v any = key
		if n, e := strconv.ParseInt(key, 10, 64); e == nil {
			k, v = "id", n
		}
		confdError(w, http.StatusNotFound, notFound("User", k, v))
		return
	}
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	if !s.admin && u.UUID != s.tok.UserUUID {
		forbid(w)
		return
	}
	switch r.Method {
	case http.MethodHead:
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		writeJSON(w, http.StatusOK, a.userJSON(r, u))
	case http.MethodDelete:
		if !s.admin {
			forbid(w)
			return
		}
		if err := a.o.Users.Delete(r.Context(), u.UUID); err != nil {
			a.writeError(w, r, err, &u)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		f, ok := parseUser(w, r, false)
		if !ok {
			return
		}
		if !s.admin && (f.recording() || f.exten != nil || f.context != nil || f.sipUsername != nil || f.sipPassword != nil || f.username != nil) {
			forbid(w)
			return
		}
		var applyErr error
		_, err := a.o.Users.Update(r.Context(), u.UUID, func(x *users.User) error {
			applyErr = a.apply(f, x)
			u = *x
			return applyErr
		})
		if err != nil {
			a.writeError(w, r, err, &u)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
