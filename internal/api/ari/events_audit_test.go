package ari

import (
	"slices"
	"testing"

	"github.com/tapedeck/tapedeck/internal/call"
)

// sentOutsideCallModel are the declared event types published by others
// than the call model.
var sentOutsideCallModel = map[string]string{
	"ApplicationReplaced": "events.go, to a socket whose application another one took",
	"EndpointStateChange": "internal/server/endpointstate.go, when a user's phone registers or its last contact goes",
	"ContactStatusChange": "internal/server/endpointstate.go, Created and Removed for each registered contact",
}

// declaredNotSent are the event types Asterisk declares (and tapedeck's
// events.json with it, so that clients naming them find them) that
// tapedeck never sends, each with the reason: tapedeck has no such
// situation.
var declaredNotSent = map[string]string{
	"DeviceStateChanged":       "tapedeck has no device states (the deviceStates resource is empty)",
	"ApplicationRegistered":    "Asterisk sends it on outbound WebSocket connections only, which tapedeck does not make",
	"ApplicationUnregistered":  "as ApplicationRegistered",
	"BridgeMerged":             "tapedeck never merges bridges",
	"BridgeVideoSourceChanged": "tapedeck carries no video",
	"ChannelUserevent":         "POST /events/user/{eventName} is not implemented",
	"ChannelToneDetected":      "tapedeck has no TONE_DETECT function",
	"PeerStatusChange":         "it follows qualify (OPTIONS pings to contacts), which tapedeck does not do; registrations give EndpointStateChange and ContactStatusChange",
	"TextMessageReceived":      "tapedeck takes no SIP MESSAGE",
}

// TestDeclaredEventsAreSent: every event type events.json declares is
// sent by tapedeck, or listed in declaredNotSent with why not; none is
// both.
func TestDeclaredEventsAreSent(t *testing.T) {
	for typ := range eventDecls {
		sent := slices.Contains(call.EventTypes, typ) || sentOutsideCallModel[typ] != ""
		why, excused := declaredNotSent[typ]
		switch {
		case sent && excused:
			t.Errorf("%s is sent now; drop it from declaredNotSent (%q)", typ, why)
		case !sent && !excused:
			t.Errorf("%s is declared and never sent", typ)
		}
	}
	for typ := range declaredNotSent {
		if _, ok := eventDecls[typ]; !ok {
			t.Errorf("declaredNotSent lists %s, which is not declared", typ)
		}
	}
	for typ := range sentOutsideCallModel {
		if _, ok := eventDecls[typ]; !ok {
			t.Errorf("%s is sent but not declared", typ)
		}
	}
}
