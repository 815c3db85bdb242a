package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestREADMEFirstCall runs the README's "first recorded call" block
// exactly as written (bash -e, from the repository root, on the default
// ports), with only the data directory moved to a temporary one through
// TAPEDECK_DATA_DIR; the call must leave a completed recording of the
// hold time with its audio.
func TestREADMEFirstCall(t *testing.T) {
	testutil.RequireTool(t, "sipp")
	root := testutil.RepoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh first-call\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```sh first-call block")
	}
	for _, addr := range []string{"127.0.0.1:8088"} {
		if l, err := net.Listen("tcp", addr); err != nil {
			testutil.SkipOrFail(t, "%s is taken; the README's steps use the default ports", addr)
		} else {
			l.Close()
		}
	}
	if c, err := net.ListenPacket("udp", "127.0.0.1:5060"); err != nil {
		testutil.SkipOrFail(t, "127.0.0.1:5060 is taken; the README's steps use the default ports")
	} else {
		c.Close()
	}
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", string(m[1]))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TAPEDECK_DATA_DIR="+data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's steps failed: %v\n%s", err, out)
	}
	// recordings list: SID, CREATED, DURATION, STATUS, NAME.
	row := regexp.MustCompile(`(?m)^(RE[0-9a-f]{32})\s+\S+\s+([0-9.]+)s\s+(\S+)\s+(calls/2001-\S+)$`).FindSubmatch(out)
	if row == nil {
		t.Fatalf("no recording of 2001 listed:\n%s", out)
	}
	dur, _ := strconv.ParseFloat(string(row[2]), 64)
	if string(row[3]) != "completed" || dur < 3.5 {
		t.Errorf("recording %s: status %s, duration %v s (the call held 4 s)", row[1], row[3], dur)
	}
	fi, err := os.Stat(filepath.Join(data, "recording", string(row[4])+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	if min := int64(44 + 2*8000*3.5); fi.Size() < min {
		t.Errorf("%s has %d bytes, want at least %d", fi.Name(), fi.Size(), min)
	}
	fmt.Fprintf(os.Stderr, "README first call: %s %v s, %d bytes\n", row[1], dur, fi.Size())
}
