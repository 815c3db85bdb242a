package main

// Cluster runs: -nodes N starts N tapedecks (-server-cmd) sharing one
// PostgreSQL catalog (a fresh database in the -pg server, dropped after the
// run) and, with -nats, one NATS; -kamailio (implied by -nodes > 1) puts
// Kamailio with the project's dispatcher configuration
// (packaging/kamailio/kamailio.cfg) in front of them, and the calls go to
// Kamailio. The server CPU is summed over every node; Kamailio's is
// reported apart. Every node's recordings are checked.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// NodeReport is one node of a run: its share of the server CPU and of
// the recordings.
type NodeReport struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	SIP        string  `json:"sip"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Recordings int     `json:"recordings"`
	CPUs       string  `json:"cpus,omitempty"` // -pin-nodes: the CPUs it ran on (taskset's list)
}

// KamailioReport is the proxy in front of the nodes.
type KamailioReport struct {
	Addr       string  `json:"addr"`
	Config     string  `json:"config"`
	CPUSeconds float64 `json:"cpu_seconds"` // all its processes (not in server_cpu)
}

// clusterExtra is the configuration a node of a cluster run adds: its id,
// the shared catalog and NATS.
func clusterExtra(i int, dsn, natsURL, natsPrefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node_id: loadgen-%c\n", 'a'+i)
	if dsn != "" {
		// Nodes sharing a catalog need one token key.
		fmt.Fprintf(&b, "catalog:\n  database: %q\n  token_key: \"loadgen cluster token key\"\n", dsn)
	}
	if natsURL != "" {
		fmt.Fprintf(&b, "nats:\n  url: %q\n  prefix: %q\n", natsURL, natsPrefix)
	}
	return b.String()
}

// runPrefix is a NATS subject prefix of its own for a run's nodes, so
// that they see each other and no other cluster on a shared NATS.
func runPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "loadgen" + hex.EncodeToString(b) + "."
}

// pgFreshDatabase creates an empty database in the PostgreSQL server of
// admin (a DSN allowed to CREATE DATABASE) and returns its DSN and a
// function dropping it.
func pgFreshDatabase(ctx context.Context, admin string) (string, func() error, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("-pg: %w", err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "loadgen_" + hex.EncodeToString(b)
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("-pg: CREATE DATABASE: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("-pg: want a postgres:// URL")
	}
	u.Path = "/" + name
	drop := func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(dctx, admin)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		_, err = c.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}

// kamailioProc is a Kamailio started by loadgen (its own process group).
type kamailioProc struct {
	cmd    *exec.Cmd
	addr   string
	cfg    string
	exited chan struct{}
}

func kamailioBinary() (string, error) {
	if p, err := exec.LookPath("kamailio"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/kamailio"); err == nil {
		return "/usr/sbin/kamailio", nil
	}
	return "", errors.New("kamailio not installed (Debian package kamailio; scripts/test-deps.sh)")
}

// startKamailio runs Kamailio with cfg on a free loopback UDP port,
// dispatching to nodes (host:port), and waits until it answers OPTIONS
// (asked with phone).
func startKamailio(ctx context.Context, cfg, dir string, nodes []string, phone *sipua.Phone) (*kamailioProc, error) {
	bin, err := kamailioBinary()
	if err != nil {
		return nil, err
	}
	if cfg, err = filepath.Abs(cfg); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg); err != nil {
		return nil, fmt.Errorf("-kamailio-cfg: %w", err)
	}
	var list strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&list, "1 sip:%s\n", n)
	}
	listPath := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	logf, err := os.Create(filepath.Join(dir, "kamailio.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-f", cfg, "-DD", "-E", "-l", "udp:"+addr,
		"-A", fmt.Sprintf("DISPATCHER_LIST=%q", listPath), "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kamailio: %w", err)
	}
	k := &kamailioProc{cmd: cmd, addr: addr, cfg: cfg, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(k.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		code, _ := phone.Options(octx, "sip:"+addr)
		cancel()
		if code == 200 {
			return k, nil
		}
		select {
		case <-k.exited:
			return nil, fmt.Errorf("kamailio exited at start; log: %s", filepath.Join(dir, "kamailio.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			k.stop()
			return nil, fmt.Errorf("kamailio does not answer OPTIONS on %s; log: %s", addr, filepath.Join(dir, "kamailio.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cpu is the CPU time of every process of Kamailio's process group (the
// main process and the children it forks).
func (k *kamailioProc) cpu() procCPU {
	var sum procCPU
	pgid := k.cmd.Process.Pid
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		sum.utime += u
		sum.stime += st
	}
	return sum
}

func (k *kamailioProc) stop() {
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.exited
	}
}

// sumCPU is the CPU time of the processes pids together.
func sumCPU(pids []int) (procCPU, []procCPU) {
	var sum procCPU
	each := make([]procCPU, len(pids))
	for i, p := range pids {
		c, _ := readCPU(p)
		each[i] = c
		sum.utime += c.utime
		sum.stime += c.stime
	}
	return sum, each
}

// nodeCPUSets splits the CPUs loadgen may run on into n equal sets of
// consecutive CPUs, as taskset -c lists, one per node (-pin-nodes); CPUs
// left over go to no node. Nodes on separate machines each have their own
// cores: without this, n Go runtimes on one host each size themselves
// (GOMAXPROCS) to every CPU and contend for all of them, spinning and
// migrating threads, which a real cluster does not pay (bench/RESULTS.md).
func nodeCPUSets(n int) ([]string, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("-pin-nodes: %w", err)
	}
	var cpus []int
	for i := 0; len(cpus) < set.Count(); i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return splitCPUs(cpus, n)
}

func splitCPUs(cpus []int, n int) ([]string, error) {
	if n < 1 || len(cpus) < n {
		return nil, fmt.Errorf("-pin-nodes: %d CPUs cannot give %d nodes one each", len(cpus), n)
	}
	per := len(cpus) / n
	sets := make([]string, n)
	for i := range sets {
		l := make([]string, per)
		for j := range l {
			l[j] = strconv.Itoa(cpus[i*per+j])
		}
		sets[i] = strings.Join(l, ",")
	}
	return sets, nil
}

// cpusAllowed is /proc/PID/status's Cpus_allowed_list for pid, with
// ranges (0-3) spelled out as taskset's lists are (0,1,2,3).
func cpusAllowed(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var out []string
		for _, r := range strings.Split(strings.TrimSpace(v), ",") {
			lo, hi, isRange := strings.Cut(r, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return "", fmt.Errorf("Cpus_allowed_list %q", v)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil {
					return "", fmt.Errorf("Cpus_allowed_list %q", v)
				}
			}
			for c := a; c <= b; c++ {
				out = append(out, strconv.Itoa(c))
			}
		}
		return strings.Join(out, ","), nil
	}
	return "", errors.New("no Cpus_allowed_list")
}
