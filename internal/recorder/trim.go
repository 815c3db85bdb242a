package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// TrimThreshold is the amplitude at or under which a sample is silence for
// TrimWAV (about -48 dBFS: the noise of a quiet line, not speech).
const TrimThreshold = 128

// trimChunk is how much TrimWAV reads at a time.
const trimChunk = 64 << 10

// TrimWAV removes the leading and trailing silence of a 16-bit PCM WAV
// file in place, as Twilio's Trim=trim-silence does: the frames before the
// first and after the last one with a sample louder than threshold (any
// channel) go. It returns the frames kept (0 for a file that is all
// silence, which is left with no audio). The file is read in chunks; the
// kept audio is moved to the start of the data chunk, the file truncated
// and its header sizes rewritten.
func TrimWAV(path string, threshold int) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	info, err := ParseWAV(f, fi.Size())
	if err != nil {
		return 0, err
	}
	if info.Format != 1 || info.Bits != 16 || info.Channels == 0 {
		return 0, fmt.Errorf("trim: %s is not 16-bit PCM", path)
	}
	if info.ChunkAfterData {
		return 0, errors.New("trim: a chunk follows the audio; not trimmed")
	}
	frameBytes := int64(info.Channels) * 2
	dataLen := min(int64(info.DataLen), fi.Size()-info.DataOffset)
	frames := dataLen / frameBytes
	buf := make([]byte, trimChunk-trimChunk%frameBytes)
	loud := func(b []byte) int64 { // index of the first loud frame in b, or -1
		for i := 0; i+1 < len(b); i += 2 {
			s := int(int16(binary.LittleEndian.Uint16(b[i:])))
			if s > threshold || s < -threshold {
				return int64(i) / frameBytes
			}
		}
		return -1
	}
	first := int64(-1)
	for off := int64(0); off < frames*frameBytes && first < 0; off += int64(len(buf)) {
		n := min(int64(len(buf)), frames*frameBytes-off)
		if _, err := f.ReadAt(buf[:n], info.DataOffset+off); err != nil && err != io.EOF {
			return 0, err
		}
		if i := loud(buf[:n]); i >= 0 {
			first = off/frameBytes + i
		}
	}
	last := first
	if first >= 0 {
		// Backwards from the end, a chunk at a time, for the last loud frame.
		for end := frames * frameBytes; end > first*frameBytes; {
			start := max(end-int64(len(buf)), first*frameBytes)
			b := buf[:end-start]
			if _, err := f.ReadAt(b, info.DataOffset+start); err != nil && err != io.EOF {
				return 0, err
			}
			found := int64(-1)
			for i := len(b) - 2; i >= 0; i -= 2 {
				s := int(int16(binary.LittleEndian.Uint16(b[i:])))
				if s > threshold || s < -threshold {
					found = int64(i) / frameBytes
					break
				}
			}
			if found >= 0 {
				last = start/frameBytes + found
				break
			}
			end = start
		}
	}
	kept := int64(0)
	if first >= 0 {
		kept = last - first + 1
	}
	if kept == frames && dataLen == int64(info.DataLen) {
		return kept, nil // nothing to trim
	}
	// Move the kept frames to the start of the data (forward: the
	// destination never passes the source).
	for done := int64(0); done < kept*frameBytes; {
		n := min(int64(len(buf)), kept*frameBytes-done)
		if _, err := f.ReadAt(buf[:n], info.DataOffset+first*frameBytes+done); err != nil && err != io.EOF {
			return 0, err
		}
		if _, err := f.WriteAt(buf[:n], info.DataOffset+done); err != nil {
			return 0, err
		}
		done += n
	}
	size := info.DataOffset + kept*frameBytes
	if err := f.Truncate(size); err != nil {
		return 0, err
	}
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], uint32(size-8))
	if _, err := f.WriteAt(le[:], 4); err != nil {
		return 0, err
	}
	binary.LittleEndian.PutUint32(le[:], uint32(kept*frameBytes))
	if _, err := f.WriteAt(le[:], info.SizeOffset); err != nil {
		return 0, err
	}
	return kept, f.Sync()
}
