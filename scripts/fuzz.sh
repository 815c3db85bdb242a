#!/usr/bin/env bash
# Bounded fuzz runs of the fuzz targets (the seed corpora under
# testdata/fuzz/ also run in plain `go test`). FUZZTIME overrides the time
# per target (default 15s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-15s}"

# SIP messages through sipgo's parser and tapedeck's handlers: INVITE,
# re-INVITE, ACK, BYE, CANCEL, OPTIONS (issue 12).
go test -run='^$' -fuzz='^FuzzHandlers$' -fuzztime="$t" ./internal/sip/

# tone: strings of ARI play requests (issue 13).
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$t" ./internal/media/tone/

# Sound files as decoded from disk and from sound:http fetches (issue 13).
go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime="$t" ./internal/sounds/
# RTP/RTCP datagrams from several sources through a session (strict RTP,
# statistics, DTMF) and packets through a recording's timeline (issue 12).

go test -run='^$' -fuzz='^FuzzSession$' -fuzztime="$t" ./internal/rtp/
go test -run='^$' -fuzz='^FuzzTimeline$' -fuzztime="$t" ./internal/recorder/
