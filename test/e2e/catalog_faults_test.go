package e2e

// Faults found by attacking a running server (issue 12), catalog and
// recording-lifecycle parts.

import (
	"context"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestcommListBadPaging: an AfterSid that names no recording of the
// account, and Page values whose offset (Page*PageSize) does not fit, are
// the client's mistakes: 400 with a message saying which, never 500.
func TestRestcommListBadPaging(t *testing.T) {
	n := startNode(t)
	acc := defaultAccount(t, n)
	list := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings"
	for _, tc := range []struct{ query, want string }{
		{"AfterSid=RE00000000000000000000000000000000", "AfterSid"},
		{"AfterSid=nonsense", "AfterSid"},
		{"Page=9999999999999999999", "Page"},
		{"Page=9223372036854775807&PageSize=2", "Page"},
		{"Page=4611686018427387904&PageSize=1000", "Page"},
		{"Page=2147483647&PageSize=1000", "Page"},
		{"PageSize=9223372036854775807", "PageSize"},
		{"Limit=99999999999999999999", "Limit"},
	} {
		for _, ext := range []string{".json", ""} {
			code, body := rc(t, n, acc, "GET", list+ext+"?"+tc.query)
			if code != 400 || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s%s?%s = %d %s, want 400 naming %s", list, ext, tc.query, code, body, tc.want)
			}
		}
	}
	// The largest page that fits is an empty page, not an error.
	if code, body := rc(t, n, acc, "GET", list+".json?Page=2147483647&PageSize=1"); code != 200 {
		t.Errorf("Page=2147483647&PageSize=1: %d %s", code, body)
	}
}

// TestRecordingNameInvalidUTF8: a name that is not valid UTF-8 could never
// be given back through the JSON APIs, so channel record, bridge record and
// copy refuse it with 400 and create nothing.
func TestRecordingNameInvalidUTF8(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, _ := answeredCall(t, n, events, phone, "331")
	const bad = "bad%FFname"
	if code, body := n.do("POST", "/channels/"+id+"/record?format=wav&name=dir%2F"+bad, nil); code != 400 {
		t.Errorf("channel record: %d %s, want 400", code, body)
	}
	n.mustDo("POST", "/bridges?bridgeId=b1&type=mixing", 200)
	if code, body := n.do("POST", "/bridges/b1/record?format=wav&name="+bad, nil); code != 400 {
		t.Errorf("bridge record: %d %s, want 400", code, body)
	}
	if err := os.WriteFile(filepath.Join(n.recDir(), "src.wav"), wavBytes(8000), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := n.do("POST", "/recordings/stored/src/copy?destinationRecordingName="+bad, nil); code != 400 {
		t.Errorf("copy: %d %s, want 400", code, body)
	}
	var names []string
	filepath.WalkDir(n.recDir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != n.recDir() {
			names = append(names, strings.TrimPrefix(p, n.recDir()))
		}
		return nil
	})
	if len(names) != 1 || names[0] != "/src.wav" {
		t.Errorf("files under the recordings root: %q, want only /src.wav", names)
	}
}

// wavBytes is a WAV file of n samples of silence (8 kHz mono 16-bit).
func wavBytes(n int) []byte {
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	return b
}

// TestDeleteStoredWhileRecording: DELETE /recordings/stored/NAME while that
// recording is being written answers 409 as Asterisk does and leaves the
// file alone; the recording then finishes with everything in it.
func TestDeleteStoredWhileRecording(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "332")
	n.mustDo("POST", "/channels/"+id+"/record?name=busy&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(8000)))
	waitRx(t, n, id, 50)
	if code, body := n.do("DELETE", "/recordings/stored/busy", nil); code != 409 {
		t.Errorf("DELETE of the live recording's stored name: %d %s, want 409", code, body)
	}
	path := filepath.Join(n.recDir(), "busy.wav")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("file after the refused DELETE: %v", err)
	}
	n.mustDo("POST", "/recordings/live/busy/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	if _, pcm := readWAV(t, path); len(pcm) < 8000*9/10 {
		t.Errorf("recording holds %d samples, want about 8000", len(pcm))
	}
	// Stored now: DELETE works.
	n.mustDo("DELETE", "/recordings/stored/busy", 204)
}
