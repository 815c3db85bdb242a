package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestClusterLoadSmoke: the cluster harness works. loadgen starts two
// tapedeck nodes sharing a fresh PostgreSQL catalog and NATS, Kamailio with
// packaging/kamailio/kamailio.cfg in front, and sends scenario a's calls
// (10 × 10 s) to Kamailio: every call is answered, calls land on both
// nodes, every recording on both nodes is exact and without gaps, and the
// server CPU is the sum of both nodes'.
//
// With -pin-nodes (the subtest pinned, on a machine with 2 CPUs or more)
// each node runs on CPUs of its own: the report names, per node, the CPUs
// the kernel lets it run on, read from /proc, and no two nodes share one.
func TestClusterLoadSmoke(t *testing.T) {
	t.Run("shared", func(t *testing.T) { clusterLoadSmoke(t, false) })
	t.Run("pinned", func(t *testing.T) {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
			t.Skipf("SKIP -pin-nodes: %d CPUs (%v), two nodes need two", set.Count(), err)
		}
		clusterLoadSmoke(t, true)
	})
}

func clusterLoadSmoke(t *testing.T, pin bool) {
	if testing.Short() {
		t.Skip("-short: the cluster smoke load takes about 20 s")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc to measure the servers")
	}
	if _, err := kamailioBinary(); err != nil {
		testutil.SkipOrFail(t, "SKIP cluster load: %v", err)
	}
	pg := os.Getenv("TAPEDECK_TEST_PG_DSN")
	if pg == "" {
		pg = "postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable"
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := pgx.Connect(pctx, pg)
	pcancel()
	if err != nil {
		testutil.SkipOrFail(t, "SKIP cluster load: PostgreSQL unreachable (%v); run scripts/pg-test.sh or set TAPEDECK_TEST_PG_DSN", err)
	}
	conn.Close(context.Background())
	natsURL := os.Getenv("TAPEDECK_TEST_NATS_URL")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(natsURL, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(t, "SKIP cluster load: NATS %s unreachable (%v); start nats-server -js or set TAPEDECK_TEST_NATS_URL", natsURL, err)
	}
	nc.Close()

	bin := filepath.Join(t.TempDir(), "tapedeck")
	build := exec.Command("go", "build", "-o", bin, "github.com/tapedeck/tapedeck/cmd/tapedeck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := config{scenario: "a", calls: 10, rate: 20, duration: 10 * time.Second, serverCmd: bin,
		ariUser: "asterisk", ariPass: "asterisk", tick: 5 * time.Millisecond, dialTimeout: 15 * time.Second,
		nodes: 2, kamailioCfg: "../../packaging/kamailio/kamailio.cfg", pg: pg, nats: natsURL, pinNodes: pin}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if !c.kamailio {
		t.Fatal("-nodes 2 did not imply -kamailio")
	}
	rep, err := run(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	rep.CommandLine = "TestClusterLoadSmoke"
	var sb strings.Builder
	rep.writeText(&sb)
	t.Log("\n" + sb.String())
	if rep.Calls.Attempted != 10 || rep.Calls.Answered != 10 || rep.Calls.Failed != 0 {
		t.Errorf("calls attempted/answered/failed = %d/%d/%d, want 10/10/0", rep.Calls.Attempted, rep.Calls.Answered, rep.Calls.Failed)
	}
	if rep.Kamailio == nil || !strings.Contains(rep.Server, "Kamailio") {
		t.Errorf("the calls did not go through Kamailio: %s", rep.Server)
	}
	if len(rep.Nodes) != 2 {
		t.Fatalf("%d nodes in the report, want 2", len(rep.Nodes))
	}
	sum := 0.0
	for _, n := range rep.Nodes {
		if n.Recordings == 0 {
			t.Errorf("node %s recorded no call: the calls did not land on both nodes (%+v)", n.Name, rep.Nodes)
		}
		if !(n.CPUSeconds > 0) {
			t.Errorf("node %s: CPU %v s, want > 0", n.Name, n.CPUSeconds)
		}
		sum += n.CPUSeconds
	}
	if d := sum - rep.CPU.TotalSeconds; d > 0.011 || d < -0.011 {
		t.Errorf("server CPU %.3f s is not the nodes' sum %.3f s", rep.CPU.TotalSeconds, sum)
	}
	if pin {
		seen := map[string]string{}
		for _, n := range rep.Nodes {
			if n.CPUs == "" {
				t.Errorf("-pin-nodes: node %s ran on no CPU set of its own", n.Name)
			}
			for _, cpu := range strings.Split(n.CPUs, ",") {
				if o, ok := seen[cpu]; ok {
					t.Errorf("-pin-nodes: CPU %s is both %s's and %s's", cpu, o, n.Name)
				}
				seen[cpu] = n.Name
			}
		}
		if !strings.Contains(rep.Server, "CPUs of its own") {
			t.Errorf("the report does not say the nodes were pinned: %s", rep.Server)
		}
	} else if rep.Nodes[0].CPUs != "" || rep.Nodes[1].CPUs != "" {
		t.Errorf("nodes pinned without -pin-nodes: %+v", rep.Nodes)
	}
	if rep.Nodes[0].Recordings+rep.Nodes[1].Recordings != 10 {
		t.Errorf("recordings by node %d + %d, want 10 in all", rep.Nodes[0].Recordings, rep.Nodes[1].Recordings)
	}
	if rr := rep.Recordings; rr.Found != 10 || rr.Missing != 0 || rr.WithGap != 0 || rr.BadLength != 0 || rr.BadHeader != 0 || rr.Unreadable != 0 {
		t.Errorf("recordings: %d found, %d missing, %d with gaps, %d wrong length, %d bad header, %d unreadable", rr.Found, rr.Missing, rr.WithGap, rr.BadLength, rr.BadHeader, rr.Unreadable)
	}
	if !(rep.CPU.MsPerCallSecond > 0) {
		t.Errorf("server CPU per call-second = %v, want > 0", rep.CPU.MsPerCallSecond)
	}
	if !rep.Passed {
		t.Errorf("run FAILED: %v", rep.Problems)
	}
}

// TestSplitCPUs: -pin-nodes gives each node the same number of CPUs, none
// shared, and refuses more nodes than CPUs.
func TestSplitCPUs(t *testing.T) {
	for _, tc := range []struct {
		cpus []int
		n    int
		want string
	}{
		{[]int{0, 1}, 2, "0|1"},
		{[]int{0, 1, 2, 3, 4}, 2, "0,1|2,3"},
		{[]int{2, 5, 7, 9}, 2, "2,5|7,9"},
		{[]int{0, 1, 2, 3, 4, 5}, 3, "0,1|2,3|4,5"},
	} {
		got, err := splitCPUs(tc.cpus, tc.n)
		if err != nil || strings.Join(got, "|") != tc.want {
			t.Errorf("splitCPUs(%v, %d) = %q, %v; want %s", tc.cpus, tc.n, got, err, tc.want)
		}
	}
	if got, err := splitCPUs([]int{0}, 2); err == nil {
		t.Errorf("splitCPUs(1 CPU, 2 nodes) = %q, want an error", got)
	}
}

// TestCPUsAllowed reads this process's own CPU list as taskset writes one.
func TestCPUsAllowed(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Skip(err)
	}
	var want []string
	for i := 0; len(want) < set.Count(); i++ {
		if set.IsSet(i) {
			want = append(want, strconv.Itoa(i))
		}
	}
	got, err := cpusAllowed(os.Getpid())
	if err != nil || got != strings.Join(want, ",") {
		t.Errorf("cpusAllowed(self) = %q, %v; want %q", got, err, strings.Join(want, ","))
	}
}
