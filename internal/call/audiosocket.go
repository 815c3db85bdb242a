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
type audioSocket struct {
	conn net.Conn
	kind byte // audio kind of the channel's format
	mu   sync.Mutex
	buf  []byte
}

// dialAudioSocket connects to the far end and sends the UUID message.
func dialAudioSocket(host string, id [16]byte, kind byte) (*audioSocket, error) {
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	a := &audioSocket{conn: conn, kind: kind}
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(appendASMessage(nil, asKindUUID, id[:])); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetWriteDeadline(time.Time{})
	return a, nil
}

// write sends one message. It may block while the far end does not read
// (on the stream's writer goroutine, never the media path; frames queue
// and then drop meanwhile) until the channel closes the connection: no
// deadline, which would cost a timer update per frame.
func (a *audioSocket) write(kind byte, payload []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = appendASMessage(a.buf[:0], kind, payload)
	_, err := a.conn.Write(a.buf)
	return err
}

func (a *audioSocket) writeAudio(frame []byte) error { return a.write(a.kind, frame) }

func (a *audioSocket) writeDigit(d rune) error { return a.write(asKindDTMF, []byte{byte(d)}) }

func (a *audioSocket) close() { a.conn.Close() }

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
