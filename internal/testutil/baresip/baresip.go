// Package baresip runs real baresip softphones (Debian package baresip,
// version 1.0) on loopback for end-to-end tests and drives them through
// baresip's ctrl_tcp module (netstring-framed JSON).
//
// Each Phone has its own temporary config directory, SIP port, RTP port
// range and control port; a generated WAV file is its microphone and the
// ALSA "null" device its speaker, so no sound card is needed.
//
// Known baresip 1.0 behaviour this package relies on or works around:
//   - ctrl_tcp serves one client at a time (a new connection silently
//     replaces the old one), so a Phone keeps exactly one connection open.
//   - A failed ctrl_tcp bind is not fatal to baresip (it keeps running
//     without control), a failed SIP bind is (exit status 98); Start checks
//     the log and retries with other ports.
//   - sip_listen P binds UDP P, TCP P and TCP P+1 (TLS).
//   - When the microphone WAV runs out baresip hangs up: the default file
//     lasts 60 s.
//   - The callee answers 404 unless the Request-URI user equals its account
//     user: dial Phone.URI().
//   - "sndcode 12#" sends the digits one after another as RFC 4733 events;
//     the receiver reports each as CALL_DTMF_START (param = the digit)
//     followed by CALL_DTMF_END (no param).
package baresip

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// Options configure a Phone. The zero value is a manually answering phone
// with user "phone" and a 60 s 440 Hz microphone tone.
type Options struct {
	// User is the account user (sip:USER@127.0.0.1). Default "phone".
	User string
	// AnswerMode is "manual" (default: incoming calls ring until Accept)
	// or "auto" (answered at once).
	AnswerMode string
	// AudioFile is the WAV file used as microphone (8 kHz mono 16-bit is
	// best). Default: a generated 60 s 440 Hz tone. baresip hangs up the
	// call when the file runs out.
	AudioFile string
	// Record loads baresip's sndfile module: what the phone sent and
	// received is written as WAV files (*-enc.wav, *-dec.wav) to
	// Phone.RecordDir.
	Record bool
	// Registrar is host:port of a SIP registrar: the account becomes
	// sip:USER@Registrar, registers there (digest with Password) and
	// sends its calls there.
	Registrar string
	// Password is the digest password for the registrar.
	Password string
	// ExtraConfig lines are appended to the generated config file.
	ExtraConfig []string
}

// Event is one ctrl_tcp event, e.g. {"event":true,"type":"CALL_ESTABLISHED",
// "class":"call","accountaor":"sip:a@127.0.0.1","direction":"outgoing",
// "peeruri":"sip:b@127.0.0.1:5080","id":"ea38ede3a5658c89","param":"..."}.
type Event = map[string]any

// Phone is a running baresip instance.
type Phone struct {
	t testing.TB

	User      string
	Registrar string // host:port of the registrar ("" none)
	SIPPort   int    // UDP and TCP on 127.0.0.1
	RTPLo     int    // first port of rtp_ports
	RTPHi     int    // last port of rtp_ports
	CtrlPort  int    // ctrl_tcp on 127.0.0.1
	Dir       string // config directory (config, accounts, contacts, log.txt)
	LogPath   string // baresip stdout+stderr
	RecordDir string // sndfile output when Options.Record

	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File

	conn   net.Conn
	sendMu sync.Mutex // one command at a time

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever state below changes
	events    []Event
	consumed  []bool
	responses map[string]Event
	readErr   error
	nextTok   int

	closeOnce sync.Once
}

const startAttempts = 5

// Start runs a baresip phone and connects to its control port. It is stopped
// by a t.Cleanup; if the test failed, the tail of baresip's log is printed.
// baresip missing: skip, or fail when CI=true.
func Start(t testing.TB, opts Options) *Phone {
	t.Helper()
	bin := testutil.RequireTool(t, "baresip")
	if opts.User == "" {
		opts.User = "phone"
	}
	switch opts.AnswerMode {
	case "":
		opts.AnswerMode = "manual"
	case "manual", "auto":
	default:
		t.Fatalf("baresip: unknown AnswerMode %q", opts.AnswerMode)
	}
	moduleDir := "/usr/lib/baresip/modules"
	for _, m := range []string{"ctrl_tcp.so", "aufile.so", "g711.so", "alsa.so"} {
		if _, err := os.Stat(filepath.Join(moduleDir, m)); err != nil {
			testutil.SkipOrFail(t, "baresip module %s missing in %s; run scripts/test-deps.sh", m, moduleDir)
		}
	}

	dir := t.TempDir()
	if opts.AudioFile == "" {
		opts.AudioFile = filepath.Join(dir, "mic.wav")
		if err := testutil.WriteToneWAV(opts.AudioFile, 8000, 440, 60*time.Second); err != nil {
			t.Fatalf("baresip: write mic WAV: %v", err)
		}
	} else if abs, err := filepath.Abs(opts.AudioFile); err == nil {
		opts.AudioFile = abs
	}

	p := &Phone{
		t:         t,
		User:      opts.User,
		Registrar: opts.Registrar,
		Dir:       dir,
		LogPath:   filepath.Join(dir, "log.txt"),
		changed:   make(chan struct{}),
		responses: map[string]Event{},
	}
	if opts.Record {
		p.RecordDir = filepath.Join(dir, "rec")
		if err := os.MkdirAll(p.RecordDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Registered first so that it runs after Close (cleanups run LIFO).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("baresip %s (%s): last lines of %s:\n%s", p.User, p.URI(), p.LogPath, p.LogTail(60))
		}
	})

	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		p.SIPPort = testutil.FreeSIPPort(t)
		p.RTPLo, p.RTPHi = testutil.FreeUDPPortRange(t, 40)
		p.CtrlPort = testutil.FreeTCPPort(t)
		if err := p.writeConfig(opts); err != nil {
			t.Fatalf("baresip: %v", err)
		}
		lastErr = p.launch(bin)
		if lastErr == nil {
			break
		}
		t.Logf("baresip %s: start attempt %d failed: %v", p.User, attempt, lastErr)
		if !errors.Is(lastErr, errAddrInUse) {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("baresip %s: could not start: %v\nlog:\n%s", p.User, lastErr, p.LogTail(40))
	}
	t.Cleanup(p.Close)
	go p.readLoop()
	return p
}

// URI is the SIP URI that reaches this phone directly:
// sip:USER@127.0.0.1:SIPPORT.
func (p *Phone) URI() string {
	return fmt.Sprintf("sip:%s@127.0.0.1:%d", p.User, p.SIPPort)
}

// AOR is the account address of the phone: sip:USER@127.0.0.1, or
// sip:USER@REGISTRAR with a registrar.
func (p *Phone) AOR() string {
	if p.Registrar != "" {
		return "sip:" + p.User + "@" + p.Registrar
	}
	return "sip:" + p.User + "@127.0.0.1"
}

func (p *Phone) writeConfig(o Options) error {
	var b strings.Builder
	w := func(k, v string) { fmt.Fprintf(&b, "%-20s %s\n", k, v) }
	w("poll_method", "epoll")
	w("sip_listen", fmt.Sprintf("127.0.0.1:%d", p.SIPPort))
	w("call_local_timeout", "120")
	w("call_max_calls", "4")
	// a WAV file is the microphone; the ALSA "null" device the speaker
	// (baresip 1.0's aufile module is a source only)
	w("audio_player", "alsa,null")
	w("audio_source", "aufile,"+o.AudioFile)
	w("audio_alert", "alsa,null")
	w("ausrc_srate", "8000")
	w("auplay_srate", "8000")
	w("ausrc_channels", "1")
	w("auplay_channels", "1")
	w("audio_buffer", "20-160")
	w("rtp_ports", fmt.Sprintf("%d-%d", p.RTPLo, p.RTPHi))
	w("rtcp_mux", "no")
	w("jitter_buffer_delay", "5-10")
	// keeps SDP and RTP on loopback ("lo" does not work; without it the
	// address of eth0 ends up in the SDP)
	w("net_interface", "127.0.0.1")
	w("module_path", "/usr/lib/baresip/modules")
	w("module", "g711.so")
	if o.Record {
		w("module", "sndfile.so")
		w("snd_path", p.RecordDir)
	}
	w("module", "aufile.so")
	w("module", "alsa.so")
	w("module_tmp", "uuid.so")
	w("module_tmp", "account.so")
	w("module_app", "contact.so")
	// menu.so provides the dial/accept/hangup/sndcode/quit commands that
	// ctrl_tcp executes; without it they are "command not found".
	w("module_app", "menu.so")
	w("module_app", "ctrl_tcp.so")
	w("ctrl_tcp_listen", fmt.Sprintf("127.0.0.1:%d", p.CtrlPort))
	w("statmode_default", "off")
	for _, l := range o.ExtraConfig {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "config"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	acct := fmt.Sprintf("<sip:%s@127.0.0.1>;regint=0;answermode=%s;audio_codecs=PCMU,PCMA;ptime=20\n", o.User, o.AnswerMode)
	if o.Registrar != "" {
		acct = fmt.Sprintf("<sip:%s@%s>;auth_pass=%s;regint=600;answermode=%s;audio_codecs=PCMU,PCMA;ptime=20\n", o.User, o.Registrar, o.Password, o.AnswerMode)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "accounts"), []byte(acct), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.Dir, "contacts"), nil, 0o644)
}

var errAddrInUse = errors.New("address already in use")

// launch starts the process and waits until it is ready and its control
// port accepts a connection (which then stays p.conn).
func (p *Phone) launch(bin string) error {
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var offset int64
	if st, err := logf.Stat(); err == nil {
		offset = st.Size()
	}
	fmt.Fprintf(logf, "=== %s -f %s (sip %d, rtp %d-%d, ctrl %d)\n", bin, p.Dir, p.SIPPort, p.RTPLo, p.RTPHi, p.CtrlPort)
	cmd := exec.Command(bin, "-f", p.Dir)
	cmd.Dir = p.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "HOME="+p.Dir)
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
	}

	// Wait for "baresip is ready." (or exit), then check for bind errors.
	deadline := time.Now().Add(15 * time.Second)
	for {
		log, _ := os.ReadFile(p.LogPath)
		if int64(len(log)) >= offset {
			log = log[offset:] // this attempt only
		}
		select {
		case <-exited:
			logf.Close()
			if bytes.Contains(log, []byte("Address already in use")) {
				return fmt.Errorf("baresip exited (%v): %w", cmd.ProcessState, errAddrInUse)
			}
			return fmt.Errorf("baresip exited during start-up (%v)", cmd.ProcessState)
		default:
		}
		if bytes.Contains(log, []byte("baresip is ready.")) {
			if bytes.Contains(log, []byte("ctrl_tcp: failed")) || bytes.Contains(log, []byte("Address already in use")) {
				stop()
				return fmt.Errorf("ctrl_tcp could not listen on %d: %w", p.CtrlPort, errAddrInUse)
			}
			break
		}
		if time.Now().After(deadline) {
			stop()
			return errors.New("baresip did not print \"baresip is ready.\" within 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	var conn net.Conn
	err = testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.CtrlPort), time.Second)
		if err != nil {
			return false
		}
		conn = c
		return true
	})
	if err != nil {
		stop()
		return fmt.Errorf("ctrl_tcp on 127.0.0.1:%d does not accept connections", p.CtrlPort)
	}
	p.cmd, p.exited, p.logf, p.conn = cmd, exited, logf, conn
	return nil
}

// notifyLocked wakes all waiters. p.mu must be held.
func (p *Phone) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Phone) readLoop() {
	r := bufio.NewReader(p.conn)
	for {
		msg, err := readNetstring(r)
		if err != nil {
			p.mu.Lock()
			p.readErr = fmt.Errorf("ctrl_tcp connection: %w", err)
			p.notifyLocked()
			p.mu.Unlock()
			return
		}
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			m = map[string]any{"raw": string(msg)}
		}
		p.mu.Lock()
		if ev, _ := m["event"].(bool); ev {
			p.events = append(p.events, m)
			p.consumed = append(p.consumed, false)
		} else if resp, _ := m["response"].(bool); resp {
			tok, _ := m["token"].(string)
			p.responses[tok] = m
		}
		p.notifyLocked()
		p.mu.Unlock()
	}
}

func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
	if err != nil || n < 0 || n > 1<<24 {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("netstring not terminated by ','")
	}
	return buf[:n], nil
}

// Command sends a ctrl_tcp command (e.g. "dial", "sip:x@127.0.0.1:5060")
// and waits up to 5 s for its response. It returns the response data, and
// an error when baresip answered ok=false or did not answer.
func (p *Phone) Command(command, params string) (string, error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	p.nextTok++
	tok := fmt.Sprintf("tok%d", p.nextTok)
	p.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": tok})
	frame := append([]byte(strconv.Itoa(len(body))+":"), body...)
	frame = append(frame, ',')
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.conn.Write(frame); err != nil {
		return "", fmt.Errorf("baresip %s: send %s: %w", p.User, command, err)
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		resp, ok := p.responses[tok]
		if ok {
			delete(p.responses, tok)
		}
		rerr, ch := p.readErr, p.changed
		p.mu.Unlock()
		if ok {
			data, _ := resp["data"].(string)
			if good, _ := resp["ok"].(bool); !good {
				return data, fmt.Errorf("baresip %s: %s %s: failed: %s", p.User, command, params, strings.TrimSpace(data))
			}
			return data, nil
		}
		if rerr != nil {
			return "", fmt.Errorf("baresip %s: %s: %w", p.User, command, rerr)
		}
		select {
		case <-ch:
		case <-deadline.C:
			return "", fmt.Errorf("baresip %s: no response to %q within 5 s", p.User, command)
		}
	}
}

// Dial calls uri (e.g. "sip:305@127.0.0.1:5060").
func (p *Phone) Dial(uri string) error {
	_, err := p.Command("dial", uri)
	return err
}

// Hangup ends the current call (or rejects a ringing incoming one).
func (p *Phone) Hangup() error {
	_, err := p.Command("hangup", "")
	return err
}

// Accept answers a ringing incoming call (AnswerMode "manual").
func (p *Phone) Accept() error {
	_, err := p.Command("accept", "")
	return err
}

// SendDTMF sends digits (0-9, *, #, A-D) as RFC 4733 telephone events on
// the current call. baresip queues them and sends them one after another.
func (p *Phone) SendDTMF(digits string) error {
	if digits == "" {
		return nil
	}
	for _, c := range digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", c) {
			return fmt.Errorf("baresip: invalid DTMF digit %q", c)
		}
	}
	_, err := p.Command("sndcode", digits)
	return err
}

// WaitEvent returns the oldest event of type typ ("CALL_ESTABLISHED",
// "CALL_CLOSED", "CALL_INCOMING", "CALL_RINGING", "CALL_DTMF_START", ...)
// that no earlier WaitEvent returned, waiting up to timeout for it to come.
// Events received before the call are included, so there is no race
// between a command and waiting for its outcome.
func (p *Phone) WaitEvent(typ string, timeout time.Duration) (Event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for i, ev := range p.events {
			if !p.consumed[i] && ev["type"] == typ {
				p.consumed[i] = true
				p.mu.Unlock()
				return ev, nil
			}
		}
		rerr, ch := p.readErr, p.changed
		p.mu.Unlock()
		if rerr != nil {
			return nil, fmt.Errorf("baresip %s: waiting for %s: %w (events so far: %s)", p.User, typ, rerr, p.eventSummary())
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, fmt.Errorf("baresip %s: no %s event within %v (events so far: %s)", p.User, typ, timeout, p.eventSummary())
		}
	}
}

// WaitDTMF waits until n DTMF digits not yet returned by WaitDTMF (or by
// WaitEvent("CALL_DTMF_START")) were received and returns them in order.
func (p *Phone) WaitDTMF(n int, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var digits strings.Builder
	for range n {
		ev, err := p.WaitEvent("CALL_DTMF_START", time.Until(deadline))
		if err != nil {
			return digits.String(), err
		}
		d, _ := ev["param"].(string)
		digits.WriteString(d)
	}
	return digits.String(), nil
}

// Events returns a copy of all events received so far.
func (p *Phone) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

func (p *Phone) eventSummary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []string
	for _, ev := range p.events {
		t, _ := ev["type"].(string)
		if param, ok := ev["param"].(string); ok && param != "" {
			t += "(" + param + ")"
		}
		s = append(s, t)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

// LogTail returns the last n lines of baresip's output.
func (p *Phone) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close asks baresip to quit (it hangs up calls with BYE), and kills it if it
// has not exited within 3 s. Safe to call more than once; Start registers it
// with t.Cleanup.
func (p *Phone) Close() {
	p.closeOnce.Do(func() {
		if p.cmd == nil {
			return
		}
		select {
		case <-p.exited:
		default:
			// quit exits at once, often before a response is sent.
			p.sendMu.Lock()
			defer p.sendMu.Unlock()
			p.conn.SetWriteDeadline(time.Now().Add(time.Second))
			body := []byte(`{"command":"quit","params":"","token":"quit"}`)
			p.conn.Write(append([]byte(strconv.Itoa(len(body))+":"), append(body, ',')...))
			select {
			case <-p.exited:
			case <-time.After(3 * time.Second):
				p.t.Logf("baresip %s: did not quit within 3 s; killing pid %d", p.User, p.cmd.Process.Pid)
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
		p.conn.Close()
		p.logf.Close()
	})
}
