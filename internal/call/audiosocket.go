package call

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// AudioSocket (Asterisk's chan_audiosocket, res_audiosocket): a TCP
// connection to the far end carrying messages of a one-byte kind, a
// two-byte big-endian payload length and the payload. The first message is
// the stream's UUID (kind 0x01, 16 bytes); audio is kind 0x10 (slin 8 kHz,
// or the channel's G.711 bytes) or 0x11-0x18 (slin at 12 … 192 kHz); a
// digit the channel receives goes to the far end as kind 0x03 (one ASCII
// byte); 0x00 ends the stream. From the far end only hangup and audio are
// taken: any other kind (a digit, a UUID, 0xff error) hangs the channel
// up, as in Asterisk.

// AudioSocket message kinds.
const (
	asKindHangup = 0x00
	asKindUUID   = 0x01
	asKindDTMF   = 0x03
	asKindAudio  = 0x10
	asKindError  = 0xff
)

// asMaxPayload is the largest payload of one message (the length field).
const asMaxPayload = 0xffff

// appendASMessage appends one AudioSocket message.
func appendASMessage(b []byte, kind byte, payload []byte) []byte {
	b = append(b, kind)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

// readASMessage reads one AudioSocket message into buf (grown as needed)
// and returns its kind and payload (valid until the next read).
func readASMessage(r *bufio.Reader, buf []byte) (kind byte, payload, grown []byte, err error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return hdr[0], payload, buf, nil
}

// audioSocket is the AudioSocket transport of an external media channel.
//
// Its writes cost no goroutine hand-off: the frame a bridge sends is
// appended to the pending messages and written at once, on the sender's
// goroutine, with a non-blocking write (sockWriter). Only when the socket
// does not take everything (the far end reads slowly) does a flusher
// goroutine write the rest, blocking; meanwhile frames queue behind it up
// to about a second of audio and then drop. With batch > 1 the frames are
// written batch at a time (ari.audiosocket_batch_ms): fewer write
// system calls, batch-1 frames more latency.
type audioSocket struct {
	conn  net.Conn
	raw   *sockWriter // nil: every write goes through the flusher goroutine
	kind  byte        // audio kind of the channel's format
	batch int         // audio frames per write
	limit int         // pending bytes beyond which audio frames drop

	mu       sync.Mutex
	pend     []byte // messages not written yet
	spare    []byte // the flusher's other buffer
	inflight int    // bytes the flusher is writing
	frames   int    // audio frames in pend since the last write
	flushing bool   // the flusher goroutine owns the socket's writes
	closed   bool
}

// errStreamFull is a frame dropped because the far end does not read.
var errStreamFull = errors.New("external media: the far end is not reading; frame dropped")

// dialAudioSocket connects to the far end and sends the UUID message;
// batch is the number of audio frames per write (at least 1) and
// frameBytes the size of one frame's payload.
func dialAudioSocket(host string, id [16]byte, kind byte, batch, frameBytes int) (*audioSocket, error) {
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	batch = max(batch, 1)
	a := &audioSocket{conn: conn, kind: kind, batch: batch, limit: max(50, batch) * (3 + frameBytes)}
	a.raw = newSockWriter(conn)
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(appendASMessage(nil, asKindUUID, id[:])); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetWriteDeadline(time.Time{})
	return a, nil
}

// writeAudio queues one audio message and writes the pending ones when a
// batch is complete. It never blocks (it runs on a bridge's clock):
// errStreamFull when the far end has not read the last second.
func (a *audioSocket) writeAudio(frame []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return net.ErrClosed
	}
	if a.inflight+len(a.pend)+3+len(frame) > a.limit {
		return errStreamFull
	}
	a.pend = appendASMessage(a.pend, a.kind, frame)
	a.frames++
	if a.frames < a.batch {
		return nil
	}
	return a.flushLocked()
}

// writeDigit sends a digit message after the audio queued before it.
func (a *audioSocket) writeDigit(d rune) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return net.ErrClosed
	}
	a.pend = appendASMessage(a.pend, asKindDTMF, []byte{byte(d)})
	return a.flushLocked()
}

// flushLocked writes the pending messages without blocking; what the
// socket does not take now is left to the flusher goroutine.
func (a *audioSocket) flushLocked() error {
	a.frames = 0
	if a.flushing || len(a.pend) == 0 {
		return nil
	}
	if a.raw != nil {
		n, err := a.raw.tryWrite(a.pend)
		if err != nil {
			a.pend = a.pend[:0]
			return err
		}
		a.pend = a.pend[:copy(a.pend, a.pend[n:])]
		if len(a.pend) == 0 {
			return nil
		}
	}
	a.flushing = true
	go a.flusher()
	return nil
}

// flusher writes, blocking, what the socket did not take, until nothing
// is pending (or the connection is closed).
func (a *audioSocket) flusher() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.pend) > 0 && !a.closed {
		out := a.pend
		a.pend, a.inflight = a.spare[:0], len(out)
		a.mu.Unlock()
		_, err := a.conn.Write(out)
		a.mu.Lock()
		a.spare, a.inflight = out[:0], 0
		if err != nil {
			a.pend = a.pend[:0]
		}
	}
	a.flushing = false
}

// close writes what a batch still holds, if the socket takes it at once,
// and closes the connection.
func (a *audioSocket) close() {
	a.mu.Lock()
	if !a.closed && !a.flushing && len(a.pend) > 0 && a.raw != nil {
		_, _ = a.raw.tryWrite(a.pend)
	}
	a.closed = true
	a.pend = a.pend[:0]
	a.mu.Unlock()
	a.conn.Close()
}

// run reads the far end's messages until the stream ends, then hangs the
// channel up.
func (a *audioSocket) run(s *streamMedia) {
	r := bufio.NewReaderSize(a.conn, 4096)
	var buf []byte
	for {
		kind, payload, grown, err := readASMessage(r, buf)
		buf = grown
		if err != nil {
			select {
			case <-s.done:
			default:
				if !errors.Is(err, io.EOF) {
					s.ch.log.Info("AudioSocket: stream broken; hanging up", "err", err)
				}
			}
			break
		}
		switch {
		case kind == asKindHangup:
			s.ch.log.Info("AudioSocket: the far end ended the stream")
		case kind == asKindUUID, kind == asKindDTMF:
			// Asterisk's res_audiosocket takes only hangup and audio from
			// the far end: anything else, a digit included, fails the
			// channel's read and the channel hangs up (its digits go to
			// the far end, never from it).
			s.ch.log.Warn("AudioSocket: the far end sent a message other than hangup or audio; hanging up", "kind", fmt.Sprintf("0x%02x", kind))
		case kind >= asKindAudio && kind <= 0x18 && len(payload) == 0:
			s.ch.log.Warn("AudioSocket: an audio message of no length from the far end; hanging up")
		case kind == asKindAudio && s.f.enc != "slin":
			s.receive(payload, s.f.enc, s.f.rate)
			continue
		case kind >= asKindAudio && kind <= 0x18:
			rate, _ := slinRateOfKind(kind)
			s.receive(payload, "slin", rate)
			continue
		case kind == asKindError:
			s.ch.log.Warn("AudioSocket: the far end reported an error; hanging up", "code", fmt.Sprintf("%x", payload))
		default:
			s.ch.log.Warn("AudioSocket: unknown message kind; hanging up", "kind", fmt.Sprintf("0x%02x", kind))
		}
		break
	}
	a.conn.Close()
	go s.ch.hangup(CauseNormalClearing, true)
}
