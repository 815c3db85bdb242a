package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// checkConfig runs tapedeck -t on a configuration file holding yaml.
func checkConfig(t *testing.T, yaml string) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tapedeck.yaml")
	if err := os.WriteFile(path, []byte("data_dir: "+t.TempDir()+"\n"+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code := run([]string{"-t", "-config", path}, &out)
	return code, out.String()
}

func route(exten, app string) string {
	return "dialplan:\n  - exten: \"" + exten + "\"\n    app: \"" + app + "\"\n"
}

// tapedeck -t finds what would otherwise fail at start or on every call,
// each problem with the exact message a user sees.
func TestConfigCheckFindsBrokenConfigurations(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown application": {route("2001", "Recrod(calls/x)"),
			`dialplan rule 1 (exten "2001"): Recrod(calls/x): unknown application "Recrod" (did you mean Record?)`},
		"unknown application, lower case": {route("2001", "record(calls/x)"),
			`dialplan rule 1 (exten "2001"): record(calls/x): unknown application "record" (did you mean Record?)`},
		"unknown application, no near name": {route("2001", "Playback(hello-world)"),
			`dialplan rule 1 (exten "2001"): Playback(hello-world): unknown application "Playback" (known: CallRecordToggle, Dial, DialTrunk, Record, Script, Stasis, Wait)`},
		"Record without a name": {route("2001", "Record()"),
			`dialplan rule 1 (exten "2001"): Record(): no recording name: want Record(name[,format]), e.g. Record(calls/${EXTEN}-${UNIQUEID},wav)`},
		"Record with an empty name": {route("2001", "Record(,wav)"),
			`dialplan rule 1 (exten "2001"): Record(,wav): no recording name: want Record(name[,format]), e.g. Record(calls/${EXTEN}-${UNIQUEID},wav)`},
		"Record with an unknown format": {route("2001", "Record(calls/x,wma)"),
			`dialplan rule 1 (exten "2001"): Record(calls/x,wma): unknown format "wma" (known: wav, wav16, sln, ulaw, alaw, g722, flac, mp3, ogg)`},
		"Record with Asterisk's options": {route("2001", "Record(calls/x,wav,10)"),
			`dialplan rule 1 (exten "2001"): Record(calls/x,wav,10): 3 arguments: want Record(name[,format])`},
		"Record escaping the root": {route("2001", "Record(../../etc/x,wav)"),
			`dialplan rule 1 (exten "2001"): Record(../../etc/x,wav): invalid recording name "../../etc/x": ".." path segment (names stay inside the recordings root)`},
		"Record escaping the root through EXTEN": {route("_X.", "Record(calls/../../${EXTEN})"),
			`dialplan rule 1 (exten "_X."): Record(calls/../../${EXTEN}): invalid recording name "calls/../../00": ".." path segment (names stay inside the recordings root)`},
		"Record with an absolute name": {route("2001", "Record(/tmp/x)"),
			`dialplan rule 1 (exten "2001"): Record(/tmp/x): invalid recording name "/tmp/x": absolute path (names stay inside the recordings root)`},
		"Record with a misspelt variable": {route("2001", "Record(calls/${UNIQUID},wav)"),
			`dialplan rule 1 (exten "2001"): Record(calls/${UNIQUID},wav): name "calls/${UNIQUID}": unknown variable ${UNIQUID} (known: EXTEN, UNIQUEID, CALLSID, CALLERID(num), EPOCH)`},
		"Record with Asterisk's name.wav": {route("2001", "Record(calls/${EXTEN}.wav)"),
			`dialplan rule 1 (exten "2001"): Record(calls/${EXTEN}.wav): name "calls/2001.wav" ends in ".wav": write Record(calls/2001,wav) (the format is an argument; the file gets its extension)`},
		"Stasis without an app": {route("2001", "Stasis()"),
			`dialplan rule 1 (exten "2001"): Stasis(): no ARI application name: want Stasis(app[,args...])`},
		"recording.checksum misspelt": {"recording:\n  checksum: on-demand\n",
			`recording.checksum: "on-demand" is not one of on_demand (default) or background`},
		"Stasis unclosed": {route("2001", "Stasis(x"),
			`dialplan rule 1 (exten "2001"): Stasis(x: missing ")" at the end`},
		"Wait with a unit": {route("2001", "Wait(5s)"),
			`dialplan rule 1 (exten "2001"): Wait(5s): "5s" is not a number of seconds`},
		"unclosed pattern": {route("_2XX[", "Stasis(x)"),
			`dialplan rule 1 (exten "_2XX["): _2XX[: "[" is not closed by "]"`},
		"backwards range": {route("_[5-1]XX", "Stasis(x)"),
			`dialplan rule 1 (exten "_[5-1]XX"): _[5-1]XX: range "5-1" runs backwards`},
		"wildcard inside a pattern": {route("_1.2", "Stasis(x)"),
			`dialplan rule 1 (exten "_1.2"): _1.2: '.' must end the pattern`},
		"duplicate extension": {"dialplan:\n  - exten: \"2001\"\n    app: Stasis(a)\n  - exten: \"2001\"\n    app: Stasis(b)\n",
			`dialplan rule 2 (exten "2001"): extension defined twice (first in rule 1)`},
		"route without app": {"dialplan:\n  - exten: \"2001\"\n",
			`dialplan rule 1 (exten "2001"): no application`},
		"max_duration on a Stasis route": {"dialplan:\n  - exten: \"2001\"\n    app: Stasis(a)\n    max_duration_seconds: 60\n",
			`dialplan rule 1 (exten "2001"): max_duration_seconds: only Record() routes record by themselves (app is Stasis(a))`},
		"SIP port out of range": {"sip:\n  listen: 127.0.0.1:99999\n",
			`sip.listen: "127.0.0.1:99999": port 99999 is out of range (0-65535)`},
		"HTTP port not a number": {"http:\n  listen: 127.0.0.1:80a8\n",
			`http.listen: "127.0.0.1:80a8": port "80a8" is not a number`},
		"HTTP port negative": {"http:\n  listen: 127.0.0.1:-1\n",
			`http.listen: "127.0.0.1:-1": port "-1" is not a number`},
		"SIP without a port": {"sip:\n  listen: 127.0.0.1\n",
			`sip.listen: "127.0.0.1": want host:port (e.g. 127.0.0.1:5060)`},
		"SIP host malformed": {"sip:\n  listen: \"exa mple:5060\"\n",
			`sip.listen: "exa mple:5060": "exa mple" is not an IP address or host name`},
		"SIP without a host": {"sip:\n  listen: \":5060\"\n",
			`rtp.host: empty (sip.listen has no host); set rtp.host to this machine's address`},
		"SIP on every interface": {"sip:\n  listen: 0.0.0.0:5060\n",
			`rtp.host: 0.0.0.0 would be offered in SDP as the media address, which callers read as hold; set rtp.host to this machine's address`},
		"HTTP on the SIP TCP port": {"http:\n  listen: 127.0.0.1:5060\n",
			`http.listen: 127.0.0.1:5060 is also sip.listen's TCP port`},
		"RTP range backwards": {"rtp:\n  port_min: 20000\n  port_max: 10000\n",
			`rtp: port range 20000-10000: port_min must be below port_max`},
		"RTP range of one port": {"rtp:\n  port_min: 10000\n  port_max: 10000\n",
			`rtp: port range 10000-10000: port_min must be below port_max`},
		"RTP range without an even/odd pair": {"rtp:\n  port_min: 10001\n  port_max: 10002\n",
			`rtp: port range 10001-10002 holds no RTP/RTCP pair (an even port and the odd one above it)`},
		"RTP port above 65535": {"rtp:\n  port_min: 10000\n  port_max: 70000\n",
			`rtp.port_max: 70000 is out of range (1-65535)`},
		"RTP range holding the SIP port": {"rtp:\n  port_min: 5000\n  port_max: 6000\n",
			`rtp: port range 5000-6000 holds the SIP port 5060`},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := checkConfig(t, tc.yaml)
			want := "tapedeck: invalid configuration:\n" + tc.want + "\n"
			if code != 1 || out != want {
				t.Errorf("exit %d, output:\n%s\nwant exit 1:\n%s", code, out, want)
			}
		})
	}
}

// Every problem is reported, not just the first, in the rules' order.
func TestConfigCheckReportsEveryProblem(t *testing.T) {
	code, out := checkConfig(t, `sip:
  listen: 127.0.0.1:99999
http:
  listen: 127.0.0.1:80a8
dialplan:
  - exten: "2000"
    app: Stasis(vm-record,${EXTEN})
  - exten: "2001"
    app: Recrod(x)
  - exten: "2002"
    app: Record(calls/x,wma)
    max_duration_seconds: -1
  - exten: _2XX[
    app: Stasis(x
  - exten: "2003"
    app: Record(../../etc/x,wav)
`)
	want := `tapedeck: invalid configuration:
sip.listen: "127.0.0.1:99999": port 99999 is out of range (0-65535)
http.listen: "127.0.0.1:80a8": port "80a8" is not a number
dialplan rule 2 (exten "2001"): Recrod(x): unknown application "Recrod" (did you mean Record?)
dialplan rule 3 (exten "2002"): Record(calls/x,wma): unknown format "wma" (known: wav, wav16, sln, ulaw, alaw, g722, flac, mp3, ogg)
dialplan rule 3 (exten "2002"): max_duration_seconds: -1 is negative
dialplan rule 4 (exten "_2XX["): _2XX[: "[" is not closed by "]"
dialplan rule 4 (exten "_2XX["): Stasis(x: missing ")" at the end
dialplan rule 5 (exten "2003"): Record(../../etc/x,wav): invalid recording name "../../etc/x": ".." path segment (names stay inside the recordings root)
`
	if code != 1 || out != want {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
}

// What -t accepts, the server runs: each application with good arguments.
func TestConfigCheckAcceptsGoodRoutes(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	yaml := fmt.Sprintf(`sip:
  listen: 127.0.0.1:%d
http:
  listen: 127.0.0.1:%d
rtp:
  port_min: 46001
  port_max: 46003
dialplan:
  - exten: _3XX
    app: Stasis(vm-record, ${EXTEN})
  - exten: "1000"
    app: Stasis(channel-tones)
  - exten: _2XX
    app: Record(calls/${EXTEN}-${UNIQUEID}-${CALLSID}-${CALLERID(num)}-${EPOCH},wav16)
    max_duration_seconds: 60
  - exten: _4[0-5]X!
    app: Record(${EXTEN})
  - exten: "5000"
    app: Wait(0.5)
  - exten: "5001"
    app: Wait
`, sipPort, httpPort)
	code, out := checkConfig(t, yaml)
	if code != 0 || out != "tapedeck: configuration OK\n" {
		t.Fatalf("exit %d: %s", code, out)
	}
	path := filepath.Join(t.TempDir(), "tapedeck.yaml")
	if err := os.WriteFile(path, []byte("data_dir: "+t.TempDir()+"\n"+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	startBinary(t, "-config", path)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d", httpPort))
}

// Addresses the server could not bind to are found too: an IP address that
// is not this machine's (192.0.2.0/24 is documentation-only, RFC 5737), a
// media host name that does not resolve (.invalid never does, RFC 6761).
func TestConfigCheckFindsForeignAddresses(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"SIP on a foreign address": {"sip:\n  listen: 192.0.2.10:5060\n",
			`sip.listen: "192.0.2.10:5060": 192.0.2.10 is not an address of this machine`},
		"HTTP on a foreign address": {"http:\n  listen: 192.0.2.10:8088\n",
			`http.listen: "192.0.2.10:8088": 192.0.2.10 is not an address of this machine` + "\n" +
				`ari.users: HTTP listens on 192.0.2.10:8088, which is not loopback; configure ARI credentials (the default asterisk/asterisk is only accepted on loopback)`},
		"RTP host unresolvable": {"rtp:\n  host: media.invalid\n",
			`rtp.host: "media.invalid" does not resolve`},
		"RTP on a foreign address": {"rtp:\n  host: 192.0.2.10\n",
			`rtp.host: 192.0.2.10 is not an address of this machine`},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := checkConfig(t, tc.yaml)
			want := "tapedeck: invalid configuration:\n" + tc.want + "\n"
			if code != 1 || out != want {
				t.Errorf("exit %d, output:\n%s\nwant exit 1:\n%s", code, out, want)
			}
		})
	}
}
