package ari

import (
	"sort"
	"strings"
)

// modelDecls declares ARI's data models compactly: "field:type" pairs, a
// trailing "?" marks an optional field. Swagger models are generated from
// them; events.json carries the event models (each extends Event).
var modelDecls = map[string]string{
	// Base models.
	"Message":       "type:string, asterisk_id:string?",
	"MissingParams": "params:List[string]",
	"Event":         "application:string, timestamp:Date",
	// channels
	"CallerID":    "name:string, number:string",
	"DialplanCEP": "context:string, exten:string, priority:long, app_name:string, app_data:string",
	"Channel":     "id:string, protocol_id:string, name:string, state:string, caller:CallerID, connected:CallerID, accountcode:string, dialplan:DialplanCEP, creationtime:Date, language:string, channelvars:object?, caller_rdnis:string?, tenantid:string?",
	"Variable":    "value:string",
	"Variables":   "variables:object",
	"RTPstat":     "txcount:int, rxcount:int, txjitter:double?, rxjitter:double?, txploss:int, rxploss:int, local_ssrc:int, remote_ssrc:int, txoctetcount:int, rxoctetcount:int, channel_uniqueid:string",
	// applications
	"Application": "name:string, channel_ids:List[string], bridge_ids:List[string], endpoint_ids:List[string], device_names:List[string], events_allowed:List[object], events_disallowed:List[object]",
	// asterisk
	"AsteriskInfo": "build:BuildInfo?, system:SystemInfo?, config:ConfigInfo?, status:StatusInfo?",
	"BuildInfo":    "os:string, kernel:string, options:string, machine:string, date:string, user:string",
	"SystemInfo":   "version:string, entity_id:string",
	"ConfigInfo":   "name:string, default_language:string, max_channels:int?, max_open_files:int?, max_load:double?, setid:SetId",
	"SetId":        "user:string, group:string",
	"StatusInfo":   "startup_time:Date, last_reload_time:Date",
	"AsteriskPing": "asterisk_id:string, ping:string, timestamp:string",
	// models of later resources, referenced by events
	"Bridge":          "id:string, technology:string, bridge_type:string, bridge_class:string, creator:string, name:string, channels:List[string], video_mode:string?, video_source_id:string?, creationtime:Date, bridgevars:object?",
	"LiveRecording":   "name:string, format:string, target_uri:string, state:string, duration:int?, talking_duration:int?, silence_duration:int?, cause:string?, quality:object?",
	"StoredRecording": "name:string, format:string, quality:object?",
	"Playback":        "id:string, media_uri:string, next_media_uri:string?, target_uri:string, language:string?, state:string",
	"Endpoint":        "technology:string, resource:string, state:string?, channel_ids:List[string]",
	"DeviceState":     "name:string, state:string",
	"Sound":           "id:string, text:string?, formats:List[FormatLangPair]",
	"FormatLangPair":  "language:string, format:string",
	"Mailbox":         "name:string, old_messages:int, new_messages:int",
	"ContactInfo":     "uri:string, contact_status:string, aor:string, roundtrip_usec:string?",
	"Peer":            "peer_status:string, cause:string?, address:string?, port:string?, time:string?",
	"TextMessage":     "from:string, to:string, body:string, variables:object?",
}

// eventDecls are the event models (all extend Event). Only types declared
// here are ever sent: ari-client throws on an undeclared event type.
var eventDecls = map[string]string{
	"DeviceStateChanged":       "device_state:DeviceState",
	"PlaybackStarted":          "playback:Playback",
	"PlaybackContinuing":       "playback:Playback",
	"PlaybackFinished":         "playback:Playback",
	"RecordingStarted":         "recording:LiveRecording",
	"RecordingFinished":        "recording:LiveRecording",
	"RecordingFailed":          "recording:LiveRecording",
	"RecordingDegraded":        "recording:LiveRecording",
	"ApplicationMoveFailed":    "channel:Channel, destination:string, args:List[string]",
	"ApplicationRegistered":    "",
	"ApplicationUnregistered":  "",
	"ApplicationReplaced":      "",
	"BridgeCreated":            "bridge:Bridge",
	"BridgeDestroyed":          "bridge:Bridge",
	"BridgeMerged":             "bridge:Bridge, bridge_from:Bridge",
	"BridgeVideoSourceChanged": "bridge:Bridge, old_video_source_id:string?",
	"ChannelCreated":           "channel:Channel",
	"ChannelDestroyed":         "cause:int, cause_txt:string, tech_cause:int?, channel:Channel",
	"ChannelEnteredBridge":     "bridge:Bridge, channel:Channel?",
	"ChannelLeftBridge":        "bridge:Bridge, channel:Channel",
	"ChannelStateChange":       "channel:Channel",
	"ChannelDtmfReceived":      "digit:string, duration_ms:int, channel:Channel",
	"ChannelDialplan":          "channel:Channel, dialplan_app:string, dialplan_app_data:string",
	"ChannelCallerId":          "caller_presentation:int, caller_presentation_txt:string, channel:Channel",
	"ChannelUserevent":         "eventname:string, channel:Channel?, bridge:Bridge?, endpoint:Endpoint?, userevent:object",
	"ChannelHangupRequest":     "cause:int?, tech_cause:int?, soft:boolean?, channel:Channel",
	"ChannelVarset":            "variable:string, value:string, channel:Channel?",
	"ChannelToneDetected":      "channel:Channel",
	"ChannelTalkingStarted":    "channel:Channel",
	"ChannelTalkingFinished":   "channel:Channel, duration:int",
	"ChannelHold":              "channel:Channel, musicclass:string?",
	"ChannelUnhold":            "channel:Channel",
	"ChannelConnectedLine":     "channel:Channel",
	"ContactStatusChange":      "endpoint:Endpoint, contact_info:ContactInfo",
	"EndpointStateChange":      "endpoint:Endpoint",
	"PeerStatusChange":         "endpoint:Endpoint, peer:Peer",
	"Dial":                     "caller:Channel?, peer:Channel, forward:string?, forwarded:Channel?, dialstring:string?, dialstatus:string",
	"StasisEnd":                "channel:Channel",
	"StasisStart":              "args:List[string], channel:Channel, replace_channel:Channel?",
	"TextMessageReceived":      "message:TextMessage, endpoint:Endpoint?",
}

type modelProp struct {
	Type     string `json:"type"`
	Required bool   `json:"required"`
}

type swaggerModel struct {
	ID          string               `json:"id"`
	Description string               `json:"description,omitempty"`
	Extends     string               `json:"extends,omitempty"`
	SubTypes    []string             `json:"subTypes,omitempty"`
	Discrim     string               `json:"discriminator,omitempty"`
	Properties  map[string]modelProp `json:"properties"`
}

func parseDecl(decl string) map[string]modelProp {
	props := map[string]modelProp{}
	for _, f := range strings.Split(decl, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, typ, _ := strings.Cut(f, ":")
		opt := strings.HasSuffix(typ, "?")
		props[name] = modelProp{Type: strings.TrimSuffix(typ, "?"), Required: !opt}
	}
	return props
}

// buildModel renders one declared model (event or not).
func buildModel(name string) (swaggerModel, bool) {
	if decl, ok := eventDecls[name]; ok {
		return swaggerModel{ID: name, Extends: "Event", Properties: parseDecl(decl)}, true
	}
	decl, ok := modelDecls[name]
	if !ok {
		return swaggerModel{}, false
	}
	m := swaggerModel{ID: name, Properties: parseDecl(decl)}
	switch name {
	case "Message":
		m.Discrim = "type"
		m.SubTypes = []string{"MissingParams", "Event"}
	case "Event":
		m.Extends = "Message"
		m.SubTypes = eventNames()
	case "MissingParams":
		m.Extends = "Message"
	}
	return m, true
}

func eventNames() []string {
	names := make([]string, 0, len(eventDecls))
	for n := range eventDecls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EventDeclared reports whether an event type is declared in events.json.
func EventDeclared(typ string) bool {
	_, ok := eventDecls[typ]
	return ok
}
