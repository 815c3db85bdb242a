package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/google/uuid"
)

// streamReceiver is scenario e's external media program: an AudioSocket
// server (TCP; each connection's first message is the stream's UUID, then
// audio messages) that counts the audio bytes of every stream.
type streamReceiver struct {
	ln    net.Listener
	mu    sync.Mutex
	bytes map[uuid.UUID]int64
	bad   []string
	wg    sync.WaitGroup
}

// StreamReport is what the receiver got.
type StreamReport struct {
	Format   string   `json:"format"`
	Expected int      `json:"expected"` // streams the app started
	Received int      `json:"received"` // streams that connected and sent audio
	Short    int      `json:"short"`    // with under 80 % of the caller's audio
	MinPct   int      `json:"min_pct"`  // the shortest stream, % of the caller's audio
	Problems []string `json:"problems,omitempty"`
}

func newStreamReceiver() (*streamReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &streamReceiver{ln: ln, bytes: map[uuid.UUID]int64{}}
	go s.accept()
	return s, nil
}

func (s *streamReceiver) addr() string { return s.ln.Addr().String() }

func (s *streamReceiver) close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *streamReceiver) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(c)
		}()
	}
}

func (s *streamReceiver) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 8192)
	var hdr [3]byte
	var id uuid.UUID
	first := true
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[1:]))
		if first {
			if hdr[0] != 0x01 || n != 16 {
				s.problem(fmt.Sprintf("first message kind 0x%02x length %d, want the UUID", hdr[0], n))
				return
			}
			if _, err := io.ReadFull(r, id[:]); err != nil {
				return
			}
			first = false
			continue
		}
		if _, err := r.Discard(n); err != nil {
			return
		}
		if hdr[0] >= 0x10 && hdr[0] <= 0x18 {
			s.mu.Lock()
			s.bytes[id] += int64(n)
			s.mu.Unlock()
		}
	}
}

func (s *streamReceiver) problem(p string) {
	s.mu.Lock()
	if len(s.bad) < 10 {
		s.bad = append(s.bad, p)
	}
	s.mu.Unlock()
}

// report sums the streams up: each should hold about the samples the
// caller sent (from the snoop's start, a little after the call's).
func (s *streamReceiver) report(format string, samples, expected int) *StreamReport {
	perSample := map[string]int{"ulaw": 1, "alaw": 1, "slin": 2, "slin12": 3, "slin16": 4, "slin24": 6, "slin32": 8, "slin44": 11, "slin48": 12}[format]
	if perSample == 0 {
		perSample = 2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &StreamReport{Format: format, Expected: expected, MinPct: 100, Problems: s.bad}
	for _, b := range s.bytes {
		if b == 0 {
			continue
		}
		rep.Received++
		pct := int(100 * b / int64(max(samples*perSample, 1)))
		if format == "slin44" {
			pct = int(100 * b / int64(max(samples*2*441/80, 1)))
		}
		rep.MinPct = min(rep.MinPct, pct)
		if pct < 80 {
			rep.Short++
		}
	}
	if rep.Received == 0 {
		rep.MinPct = 0
	}
	return rep
}

// uuidFor is the stream UUID of a caller's channel (stable, so a report
// can name it).
func uuidFor(id string) string {
	h := sha256.Sum256([]byte(id))
	u, _ := uuid.FromBytes(h[:16])
	return u.String()
}
