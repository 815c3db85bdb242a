package server

import (
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/api/ari"
	"github.com/tapedeck/tapedeck/internal/event"
)

// endpointStates remembers which users' endpoints are online, so that a
// change is told once (ARI's EndpointStateChange).
type endpointStates struct {
	mu     sync.Mutex
	online map[string]bool
}

// endpointStateChange is ARI's EndpointStateChange event.
type endpointStateChange struct {
	event.Base
	Endpoint ari.Endpoint `json:"endpoint"`
}

// startEndpointStates takes the state of the registrations loaded at
// start and hears the registrar's changes from then on.
func (s *Server) startEndpointStates() {
	s.eps.mu.Lock()
	s.eps.online = map[string]bool{}
	for _, u := range s.reg.Users() {
		if len(s.reg.Contacts(u)) > 0 {
			s.eps.online[u] = true
		}
	}
	s.eps.mu.Unlock()
	s.reg.SetOnChange(s.endpointChanged)
}

// endpointChanged publishes EndpointStateChange when a user's endpoint
// went online (a first contact registered) or offline (its last contact
// unregistered or pruned after expiring), to the applications subscribed
// to endpoint:PJSIP[/user] and those subscribed to all.
func (s *Server) endpointChanged(user string) {
	online := len(s.reg.Contacts(user)) > 0
	s.eps.mu.Lock()
	was := s.eps.online[user]
	if online {
		s.eps.online[user] = true
	} else {
		delete(s.eps.online, user)
	}
	s.eps.mu.Unlock()
	if was == online {
		return
	}
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
	s.log.Info("endpoint state changed", "endpoint", "PJSIP/"+user, "state", ep.State)
	s.bus.Publish(event.Event{Type: "EndpointStateChange", Sources: []string{"endpoint:PJSIP/" + user},
		Body: &endpointStateChange{Base: event.Base{Type: "EndpointStateChange", Timestamp: event.Time(time.Now()), AsteriskID: s.bus.EntityID()}, Endpoint: ep}})
}
