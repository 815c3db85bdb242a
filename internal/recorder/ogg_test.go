package recorder

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// These tests check the Ogg container and its repair in every build, with a
// fake Opus encoder; ogg_opus_test.go checks real Opus with -tags opus.

// fakeOpus makes deterministic packets of varied length (1..700 bytes, so
// that packets need several lacing values and some exactly 255).
type fakeOpus struct {
	skip     int
	packets  [][]byte
	released bool
}

func (f *fakeOpus) preSkip() int   { return f.skip }
func (f *fakeOpus) vendor() string { return "fake" }
func (f *fakeOpus) release()       { f.released = true }

func (f *fakeOpus) encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != opusFrame {
		panic("frame size")
	}
	k := len(f.packets)
	n := []int{1, 255, 510, 254, 256, 700, 40}[k%7] + k%3
	start := len(dst)
	for i := range n {
		dst = append(dst, byte(k*7+i)^byte(pcm[i%len(pcm)]))
	}
	f.packets = append(f.packets, append([]byte(nil), dst[start:]...))
	return dst, nil
}

type testOggPage struct {
	off     int64
	flags   byte
	granule int64
	serial  uint32
	seq     uint32
	packets [][]byte
	partial bool // last packet continues on the next page
}

// crcBitwise is the Ogg CRC computed bit by bit (independent of the table).
func crcBitwise(p []byte) uint32 {
	var crc uint32
	for _, b := range p {
		crc ^= uint32(b) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// parseOgg parses a whole file strictly: every byte belongs to a valid page.
func parseOgg(t *testing.T, b []byte) []testOggPage {
	t.Helper()
	var pages []testOggPage
	for off := 0; off < len(b); {
		if len(b)-off < 27 || string(b[off:off+4]) != "OggS" || b[off+4] != 0 {
			t.Fatalf("no page header at %d", off)
		}
		h := b[off:]
		nseg := int(h[26])
		lacing := h[27 : 27+nseg]
		blen := 0
		for _, v := range lacing {
			blen += int(v)
		}
		plen := 27 + nseg + blen
		if off+plen > len(b) {
			t.Fatalf("page at %d: %d bytes past end", off, off+plen-len(b))
		}
		page := append([]byte(nil), b[off:off+plen]...)
		want := binary.LittleEndian.Uint32(page[22:])
		clear(page[22:26])
		if got := crcBitwise(page); got != want {
			t.Fatalf("page at %d: CRC %08x, stored %08x", off, got, want)
		}
		p := testOggPage{off: int64(off), flags: h[5], granule: int64(binary.LittleEndian.Uint64(h[6:])),
			serial: binary.LittleEndian.Uint32(h[14:]), seq: binary.LittleEndian.Uint32(h[18:])}
		body := page[27+nseg:]
		var cur []byte
		for i, v := range lacing {
			cur = append(cur, body[:v]...)
			body = body[v:]
			if v < 255 {
				p.packets = append(p.packets, cur)
				cur = nil
			} else if i == len(lacing)-1 {
				p.partial = true
			}
		}
		pages = append(pages, p)
		off += plen
	}
	return pages
}

// checkOggOpus checks the RFC 7845 structure of a finished recording of n
// 8 kHz samples and returns its pages and audio packets.
func checkOggOpus(t *testing.T, b []byte, n int64, maxPageGranule int64) ([]testOggPage, [][]byte) {
	t.Helper()
	pages := parseOgg(t, b)
	if len(pages) < 3 {
		t.Fatalf("%d pages", len(pages))
	}
	head := pages[0]
	if head.flags != oggFlagBOS || head.granule != 0 || len(head.packets) != 1 || head.partial {
		t.Fatalf("first page %+v", head)
	}
	h := head.packets[0]
	if len(h) != 19 || string(h[:8]) != "OpusHead" || h[8] != 1 || h[9] != 1 ||
		binary.LittleEndian.Uint32(h[12:]) != 8000 || h[16] != 0 || h[17] != 0 || h[18] != 0 {
		t.Fatalf("OpusHead % x", h)
	}
	preskip := int64(binary.LittleEndian.Uint16(h[10:]))
	tags := pages[1]
	if tags.flags != 0 || tags.granule != 0 || len(tags.packets) != 1 || string(tags.packets[0][:8]) != "OpusTags" {
		t.Fatalf("second page %+v", tags)
	}
	vl := binary.LittleEndian.Uint32(tags.packets[0][8:])
	if int(vl)+16 != len(tags.packets[0]) || binary.LittleEndian.Uint32(tags.packets[0][12+vl:]) != 0 {
		t.Fatalf("OpusTags % x", tags.packets[0])
	}
	var audio [][]byte
	var prev int64
	for i, p := range pages {
		if p.seq != uint32(i) || p.serial != head.serial {
			t.Fatalf("page %d: seq %d serial %x", i, p.seq, p.serial)
		}
		if p.partial || p.flags&oggFlagCont != 0 {
			t.Fatalf("page %d: packet spans pages", i)
		}
		if (p.flags&oggFlagEOS != 0) != (i == len(pages)-1) {
			t.Fatalf("page %d of %d: flags %x", i, len(pages), p.flags)
		}
		if i > 0 && p.flags&oggFlagBOS != 0 {
			t.Fatalf("page %d: BOS", i)
		}
		if i < 2 {
			continue
		}
		if len(p.packets) == 0 {
			t.Fatalf("audio page %d without packets", i)
		}
		audio = append(audio, p.packets...)
		full := int64(len(audio)) * opusFrameGranule
		if i < len(pages)-1 && p.granule != full {
			t.Errorf("page %d: granule %d, want %d", i, p.granule, full)
		}
		if p.granule < prev || p.granule-prev > maxPageGranule {
			t.Errorf("page %d: granule %d after %d", i, p.granule, prev)
		}
		prev = p.granule
	}
	last := pages[len(pages)-1]
	if want := preskip + n*6; last.granule != want {
		t.Errorf("final granule %d, want %d (pre-skip %d + %d samples)", last.granule, want, preskip, n)
	}
	if total := int64(len(audio)) * opusFrameGranule; total < last.granule || total-last.granule >= 2*opusFrameGranule+preskip {
		t.Errorf("%d packets for final granule %d", len(audio), last.granule)
	}
	return pages, audio
}

func TestOggCRC(t *testing.T) {
	if got := oggCRC(0, []byte("123456789")); got != 0x89A1897F {
		t.Errorf("crc %08x", got)
	}
	b := []byte("OggS some bytes of a page \x00\xff")
	if oggCRC(0, b) != crcBitwise(b) {
		t.Error("table and bitwise CRC differ")
	}
}

// writeOddChunks writes pcm in chunk sizes that do not fit 20 ms frames.
func writeOddChunks(t testing.TB, w Writer, pcm []int16) {
	t.Helper()
	sizes := []int{1, 37, 160, 500, 3001, 159, 161, 0, 800}
	for i := 0; len(pcm) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(pcm))
		if err := w.Write(pcm[:n]); err != nil {
			t.Fatal(err)
		}
		pcm = pcm[n:]
	}
}

func newFakeOgg(t *testing.T, path string, enc *fakeOpus, opts ...Option) Writer {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	o, err := buildOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	be, err := newOggWriter(fileOut{f: f, path: path}, enc, &o)
	if err != nil {
		t.Fatal(err)
	}
	return &writer{path: path, be: be}
}

func TestOggContainer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		skip  int
		n     int
		flush time.Duration
	}{
		{"partial frame", 312, 8000*2 + 77, time.Second},
		{"whole frames", 312, 8000 * 3, time.Second},
		{"no pre-skip", 0, 160 * 51, time.Second},
		{"empty", 312, 0, time.Second},
		{"long pages", 312, 8000 * 12, 10 * time.Second},
		{"short pages", 312, 8000, 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.ogg")
			enc := &fakeOpus{skip: tc.skip}
			w := newFakeOgg(t, path, enc, WithFlushInterval(tc.flush))
			pcm := ramp(tc.n, 9)
			writeOddChunks(t, w, pcm)
			if tc.name == "no pre-skip" {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !enc.released {
				t.Error("encoder not released")
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			maxG := int64(tc.flush / time.Second * opusGranuleRate)
			if tc.flush < time.Second {
				maxG = opusFrameGranule
			}
			_, audio := checkOggOpus(t, b, int64(tc.n), max(maxG, opusFrameGranule))
			if len(audio) != len(enc.packets) {
				t.Fatalf("%d packets in file, %d encoded", len(audio), len(enc.packets))
			}
			for i := range audio {
				if string(audio[i]) != string(enc.packets[i]) {
					t.Fatalf("packet %d differs", i)
				}
			}
			s := scanOgg(mustOpen(t, path), int64(len(b)))
			if s.end != int64(len(b)) || !s.eos || !s.opus || s.preskip != int64(tc.skip) {
				t.Errorf("scan %+v of %d bytes", s, len(b))
			}
		})
	}
}

// TestOggCrashPages: what is on disk while recording is whole pages, at
// least one per flush interval.
func TestOggCrashPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.ogg")
	enc := &fakeOpus{skip: 312}
	w := newFakeOgg(t, path, enc)
	defer w.Close()
	writeOddChunks(t, w, ramp(8000*2+4000, 3))
	b, _ := os.ReadFile(path)
	pages := parseOgg(t, b)
	if len(pages) != 4 || pages[3].granule != 2*opusGranuleRate || pages[3].flags != 0 {
		t.Fatalf("%d pages on disk after 2.5 s", len(pages))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	pages = parseOgg(t, b)
	if g := pages[len(pages)-1].granule; g != 2500/20*opusFrameGranule {
		t.Errorf("after Flush: granule %d", g)
	}
}

func TestRepairOgg(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.ogg")
	enc := &fakeOpus{skip: 312}
	w := newFakeOgg(t, src, enc)
	writeFrames(t, w, ramp(8000*3+100, 4))
	whole, _ := os.ReadFile(src) // 3 s in pages, not yet closed
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	closed, _ := os.ReadFile(src)
	pages := parseOgg(t, whole)
	lastOff := pages[len(pages)-1].off
	lookahead := 312 * time.Second / 48000

	for _, tc := range []struct {
		name string
		b    []byte
		size int // size after repair
		dur  time.Duration
	}{
		// Pages written while recording: their granule position counts the
		// encoder's lookahead (pre-skip) that is not yet decodable audio.
		{"torn page", closed[:len(closed)-20], len(whole), 3*time.Second - lookahead},
		{"torn header", append(whole[:len(whole):len(whole)], "OggS\x00\x00\x01"...), len(whole), 3*time.Second - lookahead},
		{"no torn page", whole, len(whole), 3*time.Second - lookahead},
		{"bad CRC", append(whole[:lastOff:lastOff], append([]byte(nil), whole[lastOff:len(whole)-1]...)...), int(lastOff), 2*time.Second - lookahead},
		{"finished", closed, len(closed), 3*time.Second + 100*time.Second/8000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".ogg")
			b := append([]byte(nil), tc.b...)
			if tc.name == "bad CRC" {
				b = append(b, whole[len(whole)-1]^1)
			}
			os.WriteFile(p, b, 0o644)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			size, dur, err := repairOgg(f, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(tc.size) || dur != tc.dur {
				t.Errorf("size %d dur %v, want %d %v", size, dur, tc.size, tc.dur)
			}
			got, _ := os.ReadFile(p)
			if len(got) != tc.size {
				t.Fatalf("file %d bytes", len(got))
			}
			ps := parseOgg(t, got)
			if ps[len(ps)-1].flags&oggFlagEOS == 0 {
				t.Error("no EOS on the last page")
			}
		})
	}

	// Not an Ogg Opus file: left alone.
	p := filepath.Join(dir, "other.ogg")
	os.WriteFile(p, []byte("not ogg at all"), 0o644)
	f, _ := os.OpenFile(p, os.O_RDWR, 0)
	defer f.Close()
	if size, _, err := repairOgg(f, 14); err != nil || size != 14 {
		t.Errorf("other file: %d %v", size, err)
	}
}
