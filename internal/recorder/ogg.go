package recorder

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Ogg Opus recordings (RFC 7845): an OpusHead page, an OpusTags page, then
// audio pages of 20 ms Opus packets. The Opus encoder is libopus through cgo
// (ogg_opus.go, -tags opus); without it newOpusEncoder returns the
// UnavailableError (ogg_noopus.go). The Ogg container, the page scanner and
// the crash repair are pure Go and in every build.

const (
	// opusFrame is the Opus frame size: 20 ms at 8 kHz.
	opusFrame = SampleRate / 50
	// opusBitrate is the Opus bit rate (bit/s): clear narrowband speech.
	opusBitrate = 16000
	// opusGranuleRate is the rate of Ogg Opus granule positions and pre-skip.
	opusGranuleRate = 48000
	// opusGranulePerSample converts 8 kHz samples to granule units.
	opusGranulePerSample = opusGranuleRate / SampleRate
	// opusFrameGranule is one packet's duration in granule units.
	opusFrameGranule = opusFrame * opusGranulePerSample
	// opusMaxPacket bounds one encoded packet (RFC 6716: at most 1275 bytes
	// per frame).
	opusMaxPacket = 1500
)

// Ogg page layout (RFC 3533).
const (
	oggHeaderLen   = 27
	oggMaxSegments = 255
	oggMaxPage     = oggHeaderLen + oggMaxSegments + oggMaxSegments*255
	oggFlagCont    = 0x01
	oggFlagBOS     = 0x02
	oggFlagEOS     = 0x04
)

// opusEncoder is an Opus encoder for 8 kHz mono PCM.
type opusEncoder interface {
	// preSkip is the encoder's lookahead in 48 kHz samples (OpusHead
	// pre-skip).
	preSkip() int
	// encode appends one Opus packet for exactly opusFrame samples to dst.
	encode(dst []byte, pcm []int16) ([]byte, error)
	// vendor names the encoder library (OpusTags vendor string).
	vendor() string
	release()
}

func newOgg(out fileOut, o *options) (backend, error) {
	enc, err := newOpusEncoder()
	if err != nil {
		return nil, err
	}
	w, err := newOggWriter(out, enc, o)
	if err != nil {
		enc.release()
		return nil, err
	}
	return w, nil
}

// oggWriter encodes 20 ms Opus packets and puts them into Ogg pages. A page
// is written at least every flush interval (and on Flush), each page a
// complete, CRC-checked unit with the granule position of its last packet,
// so a crash leaves a file playable up to its last page. The last partial
// frame is padded with silence on Close, followed by enough silence to cover
// the encoder's lookahead; the EOS page's granule position trims the padding
// (RFC 7845 section 4.5).
type oggWriter struct {
	out     fileOut
	enc     opusEncoder
	serial  uint32
	seq     uint32
	preskip int64
	limit   int // 8 kHz samples per periodic page

	frame   [opusFrame]int16
	nframe  int   // samples in frame
	samples int64 // input samples accepted
	packets int64 // packets encoded
	pkt     []byte

	// current page
	lacing      []byte
	body        []byte
	pageSamples int // 8 kHz samples of the packets in the page

	last    []byte // last page written, for setting EOS on Close
	lastOff int64
	maxGran int64 // upper bound of page granules while finishing (0: none)
}

func newOggWriter(out fileOut, enc opusEncoder, o *options) (*oggWriter, error) {
	w := &oggWriter{
		out:     out,
		enc:     enc,
		serial:  rand.Uint32(),
		preskip: int64(enc.preSkip()),
		limit:   max(o.flushSamples, opusFrame),
		pkt:     make([]byte, 0, opusMaxPacket),
	}
	w.out.buf = make([]byte, 0, 8<<10)
	w.out.counted, w.out.torn = true, w.tornHeld
	if err := w.writeHeaders(); err != nil {
		return nil, err
	}
	return w, nil
}

// writeHeaders writes the OpusHead and OpusTags pages.
func (w *oggWriter) writeHeaders() error {
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = 1 // channels
	binary.LittleEndian.PutUint16(head[10:], uint16(w.preskip))
	binary.LittleEndian.PutUint32(head[12:], SampleRate) // input sample rate
	// output gain 0, channel mapping family 0
	w.addPacket(head)
	w.emitPage(oggFlagBOS, 0)

	vendor := w.enc.vendor()
	tags := make([]byte, 0, 8+4+len(vendor)+4)
	tags = append(tags, "OpusTags"...)
	tags = binary.LittleEndian.AppendUint32(tags, uint32(len(vendor)))
	tags = append(tags, vendor...)
	tags = binary.LittleEndian.AppendUint32(tags, 0) // no user comments
	w.addPacket(tags)
	w.emitPage(0, 0)
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	return w.out.doSync()
}

func (w *oggWriter) write(pcm []int16) error {
	for len(pcm) > 0 {
		n := copy(w.frame[w.nframe:], pcm)
		w.nframe += n
		w.samples += int64(n)
		pcm = pcm[n:]
		if w.nframe < opusFrame {
			break
		}
		if err := w.encodeFrame(); err != nil {
			return err
		}
		if w.pageSamples >= w.limit {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// encodeFrame encodes the full frame buffer as one packet.
func (w *oggWriter) encodeFrame() error {
	pkt, err := w.enc.encode(w.pkt[:0], w.frame[:])
	if err != nil {
		return err
	}
	w.nframe = 0
	w.addPacket(pkt) // may emit the page before it: count the packet after
	w.packets++
	w.pageSamples += opusFrame
	return nil
}

// addPacket appends a packet to the current page, first emitting the page
// when the packet's lacing values would not fit. Packets never span pages.
func (w *oggWriter) addPacket(p []byte) {
	if len(w.lacing)+len(p)/255+1 > oggMaxSegments {
		w.emitPage(0, w.granule())
	}
	for n := len(p); ; n -= 255 {
		if n < 255 {
			w.lacing = append(w.lacing, byte(n))
			break
		}
		w.lacing = append(w.lacing, 255)
	}
	w.body = append(w.body, p...)
}

// granule is the granule position after the packets encoded so far.
func (w *oggWriter) granule() int64 {
	g := w.packets * opusFrameGranule
	if w.maxGran > 0 && g > w.maxGran {
		g = w.maxGran
	}
	return g
}

// emitPage appends the current page to the output buffer.
func (w *oggWriter) emitPage(flags byte, granule int64) {
	start := len(w.out.buf)
	w.out.buf = appendOggPage(w.out.buf, flags, granule, w.serial, w.seq, w.lacing, w.body)
	w.lastOff = w.out.off + int64(start)
	w.last = append(w.last[:0], w.out.buf[start:]...)
	w.out.bufHeld = w.granuleHeld(granule)
	w.seq++
	w.lacing = w.lacing[:0]
	w.body = w.body[:0]
	w.pageSamples = 0
}

// granuleHeld is the audio (8 kHz samples) that a decoder plays back from
// a file whose last page has granule position g: g less the pre-skip.
func (w *oggWriter) granuleHeld(g int64) int64 {
	return max(g-w.preskip, 0) / opusGranulePerSample
}

// tornHeld is the audio the file holds after a write that put only p, a
// prefix of the buffer (whole pages), in it: up to the last page whole in
// p.
func (w *oggWriter) tornHeld(p []byte) int64 {
	held := w.out.held
	for len(p) >= oggHeaderLen {
		nseg := int(p[26])
		if len(p) < oggHeaderLen+nseg {
			break
		}
		n := oggHeaderLen + nseg
		for _, v := range p[oggHeaderLen : oggHeaderLen+nseg] {
			n += int(v)
		}
		if len(p) < n {
			break
		}
		held = w.granuleHeld(int64(binary.LittleEndian.Uint64(p[6:])))
		p = p[n:]
	}
	return held
}

// flush writes the complete packets as a page and syncs (when asked to).
// Samples of a partial frame stay buffered: at most 20 ms.
func (w *oggWriter) flush() error {
	if len(w.lacing) > 0 {
		w.emitPage(0, w.granule())
	}
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	return w.out.doSync()
}

func (w *oggWriter) close(failed bool) error {
	var err error
	if !failed {
		err = w.finish()
	}
	w.enc.release()
	if cerr := w.out.closeFile(); err == nil {
		err = cerr
	}
	return err
}

// finish pads and encodes the last frame, encodes silence until the
// lookahead is covered, and writes the EOS page.
func (w *oggWriter) finish() error {
	end := w.preskip + w.samples*opusGranulePerSample
	w.maxGran = end
	if w.nframe > 0 {
		clear(w.frame[w.nframe:])
		w.nframe = opusFrame
		if err := w.encodeFrame(); err != nil {
			return err
		}
	}
	for w.packets*opusFrameGranule < end {
		clear(w.frame[:])
		w.nframe = opusFrame
		if err := w.encodeFrame(); err != nil {
			return err
		}
	}
	if len(w.lacing) > 0 {
		w.emitPage(oggFlagEOS, end)
		return w.out.writeBuf()
	}
	// Nothing left to put in a page: mark the page already written.
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	if len(w.last) == 0 || w.last[5]&oggFlagEOS != 0 {
		return nil
	}
	w.last[5] |= oggFlagEOS
	setOggCRC(w.last)
	_, err := w.out.f.WriteAt(w.last[:oggHeaderLen], w.lastOff)
	return ioErr("write", w.out.path, err)
}

// appendOggPage appends one Ogg page holding whole packets.
func appendOggPage(dst []byte, flags byte, granule int64, serial, seq uint32, lacing, body []byte) []byte {
	start := len(dst)
	dst = append(dst, "OggS"...)
	dst = append(dst, 0, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(granule))
	dst = binary.LittleEndian.AppendUint32(dst, serial)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = append(dst, 0, 0, 0, 0) // CRC
	dst = append(dst, byte(len(lacing)))
	dst = append(dst, lacing...)
	dst = append(dst, body...)
	setOggCRC(dst[start:])
	return dst
}

// setOggCRC computes and stores the CRC of a complete page.
func setOggCRC(page []byte) {
	clear(page[22:26])
	binary.LittleEndian.PutUint32(page[22:], oggCRC(0, page))
}

// oggCRCTable is the CRC-32 of Ogg: polynomial 0x04C11DB7, not reflected,
// initial value 0, no final XOR.
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04C11DB7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(crc uint32, p []byte) uint32 {
	for _, b := range p {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
	}
	return crc
}

// oggScan is what scanOgg found.
type oggScan struct {
	end     int64 // offset just past the last valid page
	pages   int   // valid pages
	lastOff int64 // offset of the last valid page
	eos     bool  // the last valid page has the EOS flag
	opus    bool  // the first page is an OpusHead page
	preskip int64
	granule int64 // granule position of the last valid page that has one
}

// scanOgg walks the Ogg pages of one logical stream from the start of the
// file and stops at the first page that is incomplete, fails its CRC or
// belongs to another stream.
func scanOgg(r io.ReaderAt, size int64) oggScan {
	var s oggScan
	page := make([]byte, oggMaxPage)
	var serial uint32
	for off := int64(0); off+oggHeaderLen <= size; {
		h := page[:oggHeaderLen]
		if n, _ := r.ReadAt(h, off); n < oggHeaderLen {
			break
		}
		if string(h[:4]) != "OggS" || h[4] != 0 {
			break
		}
		nseg := int(h[26])
		if off+int64(oggHeaderLen+nseg) > size {
			break
		}
		seg := page[oggHeaderLen : oggHeaderLen+nseg]
		if n, _ := r.ReadAt(seg, off+oggHeaderLen); n < nseg {
			break
		}
		blen := 0
		for _, v := range seg {
			blen += int(v)
		}
		plen := oggHeaderLen + nseg + blen
		if off+int64(plen) > size {
			break
		}
		p := page[:plen]
		if n, _ := r.ReadAt(p[oggHeaderLen+nseg:], off+int64(oggHeaderLen+nseg)); n < blen {
			break
		}
		want := binary.LittleEndian.Uint32(p[22:])
		clear(p[22:26])
		got := oggCRC(0, p)
		binary.LittleEndian.PutUint32(p[22:], want)
		if got != want {
			break
		}
		ser := binary.LittleEndian.Uint32(p[14:])
		if s.pages == 0 {
			serial = ser
			body := p[oggHeaderLen+nseg:]
			if len(body) >= 19 && string(body[:8]) == "OpusHead" {
				s.opus = true
				s.preskip = int64(binary.LittleEndian.Uint16(body[10:]))
			}
		} else if ser != serial {
			break
		}
		if g := int64(binary.LittleEndian.Uint64(p[6:])); g != -1 {
			s.granule = g
		}
		s.pages++
		s.lastOff = off
		s.eos = p[5]&oggFlagEOS != 0
		off += int64(plen)
		s.end = off
		if s.eos {
			break
		}
	}
	return s
}

// oggRepairFile is what repairOgg needs (an *os.File).
type oggRepairFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
}

// repairOgg cuts what follows the last valid page (a torn page) of an Ogg
// Opus file and sets the EOS flag on that page. Files whose first page is not
// a valid OpusHead page are left alone. It returns the new size and the audio
// duration.
func repairOgg(f oggRepairFile, size int64) (int64, time.Duration, error) {
	s := scanOgg(f, size)
	if s.pages == 0 || !s.opus {
		return size, 0, nil
	}
	if s.end != size {
		if err := f.Truncate(s.end); err != nil {
			return size, 0, err
		}
		size = s.end
	}
	if !s.eos && s.pages > 2 {
		page := make([]byte, s.end-s.lastOff)
		if _, err := f.ReadAt(page, s.lastOff); err != nil {
			return size, 0, err
		}
		page[5] |= oggFlagEOS
		setOggCRC(page)
		if _, err := f.WriteAt(page[:oggHeaderLen], s.lastOff); err != nil {
			return size, 0, fmt.Errorf("set EOS: %w", err)
		}
	}
	var d time.Duration
	if n := s.granule - s.preskip; n > 0 {
		d = time.Duration(n) * time.Second / opusGranuleRate
	}
	return size, d, nil
}
