package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/media"
	"github.com/tapedeck/tapedeck/internal/media/say"
	"github.com/tapedeck/tapedeck/internal/media/tone"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/sounds"
	"github.com/tapedeck/tapedeck/internal/speech"
)

// resolver turns ARI media URIs into audio sources.
type resolver struct {
	sounds   *sounds.Index
	fetch    *sounds.Fetcher
	calls    func() call.Calls
	speech   *speech.Synth
	toneZone string
}

func newResolver(ix *sounds.Index, cacheDir string, maxBytes int64, allow *netguard.Policy, calls func() call.Calls) *resolver {
	f := sounds.NewFetcher(cacheDir, maxBytes, allow)
	f.Timeout = 20 * time.Second
	return &resolver{sounds: ix, fetch: f, calls: calls, toneZone: "us"}
}

// Resolve implements call.MediaResolver.
func (r *resolver) Resolve(ctx context.Context, uri, lang string) (media.Source, error) {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return nil, fmt.Errorf("media URI %q has no scheme", uri)
	}
	switch scheme {
	case "sound":
		if sounds.IsURL(rest) {
			return r.fetch.Fetch(ctx, rest)
		}
		return r.sounds.Open(rest, lang)
	case "recording":
		m := r.calls()
		rec, err := m.GetStored(rest)
		if err != nil {
			return nil, fmt.Errorf("recording %q: %w", rest, err)
		}
		f, _, err := m.OpenStored(ctx, rec)
		if err != nil {
			return nil, fmt.Errorf("recording %q: %w", rest, err)
		}
		defer f.Close()
		return sounds.Decode(f, rec.Format)
	case "number", "digits", "characters":
		return say.FromURI(uri, lang)
	case "tone":
		return tone.ParseURI(rest, r.toneZone)
	case "speech":
		if r.speech == nil {
			return nil, speech.ErrUnavailable
		}
		voice, text, err := speech.ParseURI(rest)
		if err != nil {
			return nil, err
		}
		return r.speech.Clip(ctx, voice, text)
	}
	return nil, fmt.Errorf("unknown media scheme %q", scheme)
}
