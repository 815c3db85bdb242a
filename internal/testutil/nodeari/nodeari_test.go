package nodeari_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// A trivial script: clean environment with the given variables, JSON lines
// read in order, non-JSON lines ignored, exit status reported.
func TestTrivialScript(t *testing.T) {
	script := filepath.Join(t.TempDir(), "trivial.js")
	src := `
console.log(JSON.stringify({type: "HELLO", who: process.env.WHO, home: process.env.HOME !== undefined, leaked: process.env.TAPEDECK_LEAK || null}));
console.log("not json");
require('ari-client'); // resolvable from test/node/node_modules
console.log(JSON.stringify({type: "TICK", n: 1}));
console.log(JSON.stringify({type: "TICK", n: 2}));
process.exit(Number(process.env.CODE));
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAPEDECK_LEAK", "yes")

	p := nodeari.Start(t, script, map[string]string{"WHO": "tapedeck", "CODE": "0"})
	l, err := p.WaitLine("HELLO", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l["who"] != "tapedeck" || l["leaked"] != nil {
		t.Fatalf("HELLO line %v: want who=tapedeck and no leaked variable", l)
	}
	for want := 1.0; want <= 2; want++ {
		l, err := p.WaitLine("TICK", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if l["n"] != want {
			t.Fatalf("TICK n=%v, want %v", l["n"], want)
		}
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitLine("TICK", time.Second); err == nil {
		t.Fatal("a third TICK line?")
	}

	p2 := nodeari.Start(t, script, map[string]string{"CODE": "3"})
	if err := p2.Wait(10 * time.Second); err == nil || p2.ExitCode() != 3 {
		t.Fatalf("Wait = %v, ExitCode = %d; want exit status 3", err, p2.ExitCode())
	}
}

// answer.js loads ari-client and reports a connection failure as an ERROR
// line and exit status 1 (no ARI server here: the port is closed).
func TestAnswerScriptConnectError(t *testing.T) {
	port := testutil.FreeTCPPort(t)
	p := nodeari.Start(t, "answer.js", map[string]string{
		"ARI_URL":    "http://127.0.0.1:" + strconv.Itoa(port),
		"ARI_APP":    "test",
		"TIMEOUT_MS": "10000",
	})
	l, err := p.WaitLine("ERROR", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := l["message"].(string)
	if !strings.Contains(msg, "ECONNREFUSED") {
		t.Errorf("ERROR message %q, want ECONNREFUSED", msg)
	}
	if err := p.Wait(5 * time.Second); err == nil || p.ExitCode() != 1 {
		t.Fatalf("Wait = %v, ExitCode = %d; want exit status 1", err, p.ExitCode())
	}
}

// answer.js gives up after TIMEOUT_MS when the server never answers.
func TestAnswerScriptTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never responds
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := nodeari.Start(t, "answer.js", map[string]string{
		"ARI_URL":    "http://" + l.Addr().String(),
		"TIMEOUT_MS": "1500",
	})
	line, err := p.WaitLine("ERROR", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := line["message"].(string); !strings.Contains(msg, "timeout") {
		t.Errorf("ERROR message %q, want a timeout", msg)
	}
	if err := p.Wait(5 * time.Second); err == nil || p.ExitCode() != 1 {
		t.Fatalf("Wait = %v, ExitCode = %d; want exit status 1", err, p.ExitCode())
	}
}
