package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

func httpStatus(url string) (int, string) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestDrainTurnsReadinessOff: on SIGTERM, with a call up, /readyz and SIP
// OPTIONS turn 503 at once (a load balancer or dispatcher takes the node
// out) while /healthz stays 200 and the call goes on.
func TestDrainTurnsReadinessOff(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	p := startBinary(t, "-config", writeConfig(t, sipPort, httpPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	answerEverything(t, base, "vm-record")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "frank", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	target := fmt.Sprintf("sip:127.0.0.1:%d", sipPort)
	if code, body := httpStatus(base + "/readyz"); code != 200 {
		t.Fatalf("/readyz before the drain: %d %s", code, body)
	}
	if code, err := phone.Options(ctx, target); code != 200 {
		t.Fatalf("OPTIONS before the drain: %d %v", code, err)
	}
	call, err := phone.Dial(ctx, fmt.Sprintf("sip:305@127.0.0.1:%d", sipPort), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		code, body := httpStatus(base + "/readyz")
		return code == 503 && strings.Contains(body, "draining")
	}, "/readyz did not turn 503 (draining)")
	if code, err := phone.Options(ctx, target); code != 503 {
		t.Errorf("OPTIONS while draining: %d %v, want 503", code, err)
	}
	if code, _ := httpStatus(base + "/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200 (alive)", code)
	}
	select {
	case <-call.Ended():
		t.Fatal("the call was hung up by the drain")
	default:
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after the last call ended")
	}
}
