package confd

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
)

func (a *API) featureJSON(r *http.Request, f users.Feature) map[string]any {
	return map[string]any{
		"uuid":    f.UUID,
		"context": f.Context,
		"exten":   f.Exten,
		"feature": f.Feature,
		"enabled": f.Enabled,
		"links":   a.link(r, "extensions_features", "/extensions/features/"+f.UUID),
	}
}

// listFeatures serves GET /extensions/features: admins only (wazo-confd
// requires the master tenant). Query: search (a part of exten, feature or
// context), the exact filters feature, exten, context and enabled, order
// (exten, feature, context, enabled; default feature), direction, limit,
// offset.
func (a *API) listFeatures(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		forbid(w)
		return
	}
	q, ok := listParams(w, r)
	if !ok {
		return
	}
	key := map[string]func(users.Feature) string{
		"feature": func(f users.Feature) string { return f.Feature },
		"exten":   func(f users.Feature) string { return f.Exten },
		"context": func(f users.Feature) string { return f.Context },
		"enabled": func(f users.Feature) string {
			if f.Enabled {
				return "true"
			}
			return "false"
		},
	}
	order := q.order
	if order == "" {
		order = "feature"
	}
	if key[order] == nil {
		confdError(w, http.StatusBadRequest, fieldErrors{"order": {"Must be one of: context, enabled, exten, feature."}})
		return
	}
	all, err := a.o.Users.Features(r.Context())
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	v := r.URL.Query()
	search := strings.ToLower(q.search)
	var matched []users.Feature
	for _, f := range all {
		if search != "" && !strings.Contains(strings.ToLower(f.Exten+"\x00"+f.Feature+"\x00"+f.Context), search) {
			continue
		}
		keep := true
		for name, k := range key {
			if v.Has(name) && !strings.EqualFold(v.Get(name), k(f)) {
				keep = false
			}
		}
		if keep {
			matched = append(matched, f)
		}
	}
	slices.SortStableFunc(matched, func(x, y users.Feature) int {
		c := strings.Compare(key[order](x), key[order](y))
		if q.desc {
			c = -c
		}
		return c
	})
	total := len(matched)
	matched = matched[min(q.offset, len(matched)):]
	if q.limit > 0 && q.limit < len(matched) {
		matched = matched[:q.limit]
	}
	items := make([]any, len(matched))
	for i, f := range matched {
		items[i] = a.featureJSON(r, f)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total})
}

// looseBool is marshmallow's fields.Boolean, which ExtensionFeatureSchema
// uses for enabled (not StrictBoolean): true/false, 1/0 and their usual
// spellings.
func looseBool(raw json.RawMessage) (bool, bool) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		switch n {
		case 1:
			return true, true
		case 0:
			return false, true
		}
		return false, false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(s) {
		case "true", "t", "1", "yes", "y", "on":
			return true, true
		case "false", "f", "0", "no", "n", "off":
			return false, true
		}
	}
	return false, false
}

// featureItem serves GET/HEAD/PUT /extensions/features/{uuid}. PUT sets
// exten (a new one replaces the old; one used by another feature is 400)
// and enabled (a disabled code is not routable); both are optional, as
// wazo-confd loads the body partially.
func (a *API) featureItem(w http.ResponseWriter, r *http.Request, s *session, uuid string) {
	if !s.admin {
		forbid(w)
		return
	}
	f, err := a.o.Users.Feature(r.Context(), uuid)
	if errors.Is(err, meta.ErrNotFound) {
		confdError(w, http.StatusNotFound, notFound("FeatureExtension", "uuid", uuid))
		return
	}
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodHead:
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodGet:
		writeJSON(w, http.StatusOK, a.featureJSON(r, f))
		return
	}
	fields, ok := readObject(w, r)
	if !ok {
		return
	}
	fe := fieldErrors{}
	if ex := str(fe, fields, "exten", false, 0); ex != nil {
		if !users.ValidFeatureExten(*ex) {
			fe.add("exten", "String does not match expected pattern.")
		}
		f.Exten = *ex
	}
	if raw, ok := fields["enabled"]; ok {
		b, good := looseBool(raw)
		if !good {
			fe.add("enabled", "Not a valid boolean.")
		}
		f.Enabled = b
	}
	if len(fe) > 0 {
		confdError(w, http.StatusBadRequest, fe)
		return
	}
	err = a.o.Users.UpdateFeature(r.Context(), f)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, meta.ErrConflict):
		confdError(w, http.StatusBadRequest, exists("FeatureExtension", "exten", f.Exten))
	case errors.Is(err, meta.ErrNotFound):
		confdError(w, http.StatusNotFound, notFound("FeatureExtension", "uuid", uuid))
	default:
		a.writeError(w, r, err, nil)
	}
}
