package server

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/api/ari"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/sip"
)

// endpointStates remembers which users' endpoints are online, so that a
// change is told once (ARI's EndpointStateChange).
type endpointStates struct {
	mu     sync.Mutex
	online map[string]bool
	// contacts are each user's contact URIs as last told
	// (ContactStatusChange).
	contacts map[string][]string
}

// contactStatusChange is ARI's ContactStatusChange event.
type contactStatusChange struct {
	event.Base
	Endpoint    ari.Endpoint `json:"endpoint"`
	ContactInfo contactInfo  `json:"contact_info"`
}

// contactInfo is ARI's ContactInfo model.
type contactInfo struct {
	URI           string `json:"uri"`
	ContactStatus string `json:"contact_status"`
	AOR           string `json:"aor"`
	RoundtripUsec string `json:"roundtrip_usec,omitempty"`
}

func contactURIs(bs []sip.Binding) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Contact)
	}
	return out
}

// endpointStateChange is ARI's EndpointStateChange event.
type endpointStateChange struct {
	event.Base
	Endpoint ari.Endpoint `json:"endpoint"`
}

// endpointChannels publishes EndpointStateChange when a channel joins or
// leaves a SIP endpoint (call.Options.EndpointChannels), as Asterisk
// publishes the endpoint's snapshot from ast_endpoint_add_channel (at the
// channel's allocation, before ChannelCreated) and
// ast_endpoint_remove_channel (at its destruction, after ChannelDestroyed):
// the endpoint's state is unchanged (online while a phone of the user is
// registered), its channel_ids are its channels now. It goes to the
// applications subscribed to endpoint:PJSIP[/user] and to all.
func (s *Server) endpointChannels(user string, ids []string) {
	s.eps.mu.Lock()
	online := s.eps.online[user]
	s.eps.mu.Unlock()
	ep := ari.Endpoint{Technology: "PJSIP", Resource: user, State: "offline", ChannelIDs: ids}
	if online {
		ep.State = "online"
	}
	s.bus.Publish(event.Event{Type: "EndpointStateChange", Sources: []string{"endpoint:PJSIP/" + user},
		Body: &endpointStateChange{Base: event.Base{Type: "EndpointStateChange", Timestamp: event.Time(time.Now()), AsteriskID: s.bus.EntityID()}, Endpoint: ep}})
}

// startEndpointStates takes the state of the registrations loaded at
// start and hears the registrar's changes from then on.
func (s *Server) startEndpointStates() {
	s.eps.mu.Lock()
	s.eps.online = map[string]bool{}
	s.eps.contacts = map[string][]string{}
	for _, u := range s.reg.Users() {
		if cs := s.reg.Contacts(u); len(cs) > 0 {
			s.eps.online[u] = true
			s.eps.contacts[u] = contactURIs(cs)
		}
	}
	s.eps.mu.Unlock()
	s.reg.SetOnChange(s.endpointChanged)
}

// endpointChanged publishes ContactStatusChange (Created, Removed) for
// each contact of the user that came or went, and EndpointStateChange when
// the endpoint went online (a first contact registered) or offline (its
// last contact unregistered or pruned after expiring), to the applications
// subscribed to endpoint:PJSIP[/user] and those subscribed to all.
func (s *Server) endpointChanged(user string) {
	cur := contactURIs(s.reg.Contacts(user))
	online := len(cur) > 0
	s.eps.mu.Lock()
	was := s.eps.online[user]
	prev := s.eps.contacts[user]
	if online {
		s.eps.online[user] = true
		s.eps.contacts[user] = cur
	} else {
		delete(s.eps.online, user)
		delete(s.eps.contacts, user)
	}
	s.eps.mu.Unlock()
	ep := ari.Endpoint{Technology: "PJSIP", Resource: user, State: "offline", ChannelIDs: []string{}}
	if online {
		ep.State = "online"
	}
	if s.calls != nil {
		prefix := "PJSIP/" + user + "-"
		for _, c := range s.calls.Channels() {
			if strings.HasPrefix(c.Name, prefix) {
				ep.ChannelIDs = append(ep.ChannelIDs, string(c.ID))
			}
		}
	}
	base := func(typ string) event.Base {
		return event.Base{Type: typ, Timestamp: event.Time(time.Now()), AsteriskID: s.bus.EntityID()}
	}
	src := []string{"endpoint:PJSIP/" + user}
	// Each contact created or removed, then the endpoint's state, as
	// res_pjsip tells them.
	contact := func(uri, status string) {
		s.bus.Publish(event.Event{Type: "ContactStatusChange", Sources: src, Body: &contactStatusChange{Base: base("ContactStatusChange"),
			Endpoint: ep, ContactInfo: contactInfo{URI: uri, ContactStatus: status, AOR: user}}})
	}
	for _, c := range cur {
		if !slices.Contains(prev, c) {
			contact(c, "Created")
		}
	}
	for _, c := range prev {
		if !slices.Contains(cur, c) {
			contact(c, "Removed")
		}
	}
	if was == online {
		return
	}
	s.log.Info("endpoint state changed", "endpoint", "PJSIP/"+user, "state", ep.State)
	s.bus.Publish(event.Event{Type: "EndpointStateChange", Sources: src, Body: &endpointStateChange{Base: base("EndpointStateChange"), Endpoint: ep}})
}
