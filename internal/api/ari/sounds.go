package ari

func (s *Server) soundsResource() *Resource {
	return &Resource{
		Name:        "sounds",
		Description: "Sound resources",
		Models:      []string{"Sound", "FormatLangPair"},
		Ops: []Op{
			{Method: "GET", Path: "/sounds", Nickname: "list", Summary: "List all sounds.", Returns: "List[Sound]",
				Params: []Param{query("lang", "string", false, "Lookup sound for a specific language."), query("format", "string", false, "Lookup sound in a specific format.")},
				Handler: func(r *Request) (any, error) {
					lang, format := r.String("lang"), r.String("format")
					if s.opts.Sounds == nil {
						return []any{}, nil
					}
					list := s.opts.Sounds.List(lang, format)
					if len(list) == 0 && (r.Has("lang") || r.Has("format")) {
						return nil, apiErr(404, "No sounds found that match the query")
					}
					if list == nil {
						return []any{}, nil
					}
					return list, nil
				}},
			{Method: "GET", Path: "/sounds/{soundId}", Nickname: "get", Summary: "Get a sound's details.", Returns: "Sound",
				Params: []Param{pathParam("soundId", "Sound's id")}, Errors: []ErrorResponse{{404, "Sound not found"}},
				Handler: func(r *Request) (any, error) {
					if s.opts.Sounds == nil {
						return nil, apiErr(404, "Sound not found")
					}
					snd, ok := s.opts.Sounds.Get(r.Path("soundId"))
					if !ok {
						return nil, apiErr(404, "Sound not found")
					}
					return snd, nil
				}},
		},
	}
}
