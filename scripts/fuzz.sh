#!/usr/bin/env bash
# Bounded fuzz runs of the fuzz targets (the seed corpora under
# testdata/fuzz/ also run in plain `go test`). FUZZTIME overrides the time
# per target (default 15s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-15s}"

# SIP messages through sipgo's parser and tapedeck's handlers: INVITE,
# re-INVITE, ACK, BYE, CANCEL, OPTIONS (issue 12).
go test -run='^$' -fuzz='^FuzzHandlers$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/sip/

# tone: strings of ARI play requests (issue 13).
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/media/tone/

# Sound files as decoded from disk and from sound:http fetches (issue 13).
go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/sounds/

# RTP/RTCP datagrams from several sources through a session (strict RTP,
# statistics, DTMF) and packets through a recording's timeline (issue 12).
go test -run='^$' -fuzz='^FuzzSession$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/rtp/
go test -run='^$' -fuzz='^FuzzTimeline$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/recorder/

# HTTP requests (method, path, query, body) through the ARI and Restcomm
# routers and handlers over a real store (issue 12). Minimizing a long
# interesting input can take the whole budget, so it is bounded too.
go test -run='^$' -fuzz='^FuzzARIRoutes$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/ari/
go test -run='^$' -fuzz='^FuzzRestcommRoutes$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/restcomm/

# ARI parameter parsing (query, form and JSON bodies, types, allowed values,
# lists) and Restcomm's StartTime/EndTime dates (issue 13).
go test -run='^$' -fuzz='^FuzzARIParams$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/ari/
go test -run='^$' -fuzz='^FuzzRestcommDates$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/restcomm/

# Jinja2 recording file name templates (call_recording.filename_template)
# with arbitrary caller values: names stay inside the recordings root or an
# allowed directory, Wazo's characters only, never a taken name (issue 14).
go test -run='^$' -fuzz='^FuzzTemplate$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/recname/

# Ozeki command API parameters through the whole handler, and OzML
# documents (issue 15).
go test -run='^$' -fuzz='^FuzzCommandParams$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/ozeki/
go test -run='^$' -fuzz='^FuzzParseOzML$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/api/ozeki/

# What an external media far end sends: AudioSocket messages and
# chan_websocket's transport_data options (issue 19).
go test -run='^$' -fuzz='^FuzzAudioSocketRead$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/call/
go test -run='^$' -fuzz='^FuzzWSOptions$' -fuzztime="$t" -fuzzminimizetime=5s ./internal/call/
