package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mewkiz/flac/frame"
)

// Recovered describes a recording repaired by Recover.
type Recovered struct {
	Path     string        // file path
	Name     string        // path relative to root without extension, "/"-separated
	Format   Format        // format of the file
	Bytes    int64         // file size after repair
	Duration time.Duration // audio duration after repair (0 when unknown)
}

const (
	inProgressSuffix = ".inprogress"
	recoveredSuffix  = ".recovered"
)

// Recover walks root for in-progress markers left by a crash, repairs each
// recording (wav: header sizes from the file length, trailing partial sample
// cut; sln: whole samples; flac: partial frame cut, sample count set; mp3:
// partial frame cut; others as they are), replaces the in-progress marker by
// a recovered marker (see IsRecovered) and reports what it repaired. Markers
// whose recording does not exist are removed. It must run before any Writer
// under root is opened (at start-up). Per-file failures are joined into the
// returned error; other files are still repaired.
func Recover(root string) ([]Recovered, error) {
	var out []Recovered
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, inProgressSuffix) {
			return nil
		}
		base := strings.TrimSuffix(strings.TrimPrefix(name, "."), inProgressSuffix)
		if base == "" {
			return nil
		}
		rec, ok, err := recoverOne(root, filepath.Join(filepath.Dir(p), base), p)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if ok {
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func recoverOne(root, path, marker string) (Recovered, bool, error) {
	f, ok := markerFormat(marker)
	if !ok {
		f = formatOfPath(path)
	}
	rec, ok, err := repairFile(root, path, f)
	if err != nil {
		return rec, false, err
	}
	if err := ignoreNotExist(os.Remove(marker)); err != nil {
		return rec, false, err
	}
	return rec, ok, nil
}

// repairFile repairs a recording left unfinished by a crash and leaves a
// recovered marker beside it; false (and no error) when the file is gone.
func repairFile(root, path string, f Format) (Recovered, bool, error) {
	rec := Recovered{Path: path, Format: f}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	if !fi.Mode().IsRegular() {
		return rec, false, fmt.Errorf("recorder: recover %s: not a regular file", path)
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return rec, false, err
	}
	rec.Bytes, rec.Duration, err = repair(file, fi.Size(), f.Name)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rec, false, fmt.Errorf("recorder: recover %s: %w", path, err)
	}
	if err := os.WriteFile(RecoveredMarker(path), []byte("format="+f.Name+"\n"), 0o644); err != nil {
		return rec, false, err
	}
	if rel, err := filepath.Rel(root, path); err == nil {
		rec.Name = filepath.ToSlash(strings.TrimSuffix(rel, filepath.Ext(rel)))
	}
	return rec, true, nil
}

// Repair makes a closed recording file consistent in place, as Recover
// does for a crashed one (header sizes from the file length, a trailing
// partial sample or frame cut), and returns its size and audio duration (0
// when unknown). For a recording that failed part way, e.g. on a full disk:
// the file then plays everything it holds, and the catalog can take its
// size and duration from it. Nothing grows, so it works on a full disk.
func Repair(path string, f Format) (int64, time.Duration, error) {
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return 0, 0, err
	}
	if !st.Mode().IsRegular() {
		file.Close()
		return 0, 0, fmt.Errorf("recorder: repair %s: not a regular file", path)
	}
	size, dur, err := repair(file, st.Size(), f.Name)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return size, dur, fmt.Errorf("recorder: repair %s: %w", path, err)
	}
	return size, dur, nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// markerFormat reads "format=NAME" from an in-progress marker.
func markerFormat(marker string) (Format, bool) {
	b, err := os.ReadFile(marker)
	if err != nil {
		return Format{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "format="); ok {
			return byName(v)
		}
	}
	return Format{}, false
}

func samplesDuration(n int64, rate int) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second / time.Duration(rate)
}

// repair fixes one file and returns its new size and duration.
func repair(f *os.File, size int64, format string) (int64, time.Duration, error) {
	switch format {
	case "wav", "wav16":
		return repairWAV(f, size, format)
	case "sln":
		end := size &^ 1
		if end != size {
			if err := f.Truncate(end); err != nil {
				return size, 0, err
			}
		}
		return end, samplesDuration(end/2, SampleRate), nil
	case "ulaw", "alaw":
		return size, samplesDuration(size, SampleRate), nil
	case "g722":
		return size, samplesDuration(size*2, 16000), nil
	case "flac":
		return repairFLAC(f, size)
	case "ogg":
		return repairOgg(f, size)
	case "mp3":
		end, n, rate := scanMP3(f, size)
		if end != size && end > 0 {
			if err := f.Truncate(end); err != nil {
				return size, 0, err
			}
			size = end
		}
		return size, samplesDuration(n, rate), nil
	}
	return size, 0, nil
}

func repairWAV(f *os.File, size int64, format string) (int64, time.Duration, error) {
	rate := uint32(SampleRate)
	if format == "wav16" {
		rate = 16000
	}
	info, err := ParseWAV(f, size)
	if err != nil {
		// Crash before the first header reached the disk: write one and
		// keep whatever follows it as audio.
		if size < wavHeaderLen {
			if err := f.Truncate(wavHeaderLen); err != nil {
				return size, 0, err
			}
			size = wavHeaderLen
		}
		info = WAVInfo{Format: 1, Channels: 1, Bits: 16, SampleRate: rate, DataOffset: wavHeaderLen, SizeOffset: 40}
		var h [wavHeaderLen]byte
		putWAVHeader(h[:], rate, 0)
		if _, err := f.WriteAt(h[:], 0); err != nil {
			return size, 0, err
		}
	}
	align := int64(info.Channels) * int64(info.Bits/8)
	if align <= 0 {
		align = 2
	}
	end := size
	if info.ChunkAfterData {
		end = info.DataOffset + int64(info.DataLen)
	}
	data := end - info.DataOffset
	data -= data % align
	if data > maxWAVData {
		data = maxWAVData - maxWAVData%align
	}
	if !info.ChunkAfterData && info.DataOffset+data != size {
		if err := f.Truncate(info.DataOffset + data); err != nil {
			return size, 0, err
		}
		size = info.DataOffset + data
	}
	var b [4]byte
	putLE32(b[:], uint32(size-8))
	if _, err := f.WriteAt(b[:], 4); err != nil {
		return size, 0, err
	}
	putLE32(b[:], uint32(data))
	if _, err := f.WriteAt(b[:], info.SizeOffset); err != nil {
		return size, 0, err
	}
	var dur time.Duration
	if info.SampleRate > 0 {
		dur = samplesDuration(data/align, int(info.SampleRate))
	}
	return size, dur, nil
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// repairFLAC cuts a trailing partial frame and writes the sample count into
// STREAMINFO (the MD5 stays zero, meaning "unknown").
func repairFLAC(f *os.File, size int64) (int64, time.Duration, error) {
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && err != io.EOF {
		return size, 0, err
	}
	if size < 42 || string(data[:4]) != "fLaC" || data[4]&0x7f != 0 {
		return size, 0, nil // not ours: leave it
	}
	// Skip metadata blocks.
	off := int64(4)
	for {
		if off+4 > size {
			return size, 0, nil
		}
		last := data[off]&0x80 != 0
		n := int64(data[off+1])<<16 | int64(data[off+2])<<8 | int64(data[off+3])
		off += 4 + n
		if last {
			break
		}
	}
	if off > size {
		return size, 0, nil
	}
	rate := int64(data[18])<<12 | int64(data[19])<<4 | int64(data[20])>>4
	r := bytes.NewReader(data[off:])
	end := off
	var samples int64
	for r.Len() > 0 {
		fr, err := frame.Parse(r)
		if err != nil {
			break
		}
		end = size - int64(r.Len())
		samples += int64(fr.BlockSize)
	}
	if end != size {
		if err := f.Truncate(end); err != nil {
			return size, 0, err
		}
	}
	// STREAMINFO bytes 18..25: rate(20) channels-1(3) bps-1(5) total(36).
	var v uint64
	for _, c := range data[18:26] {
		v = v<<8 | uint64(c)
	}
	v = v&^(1<<36-1) | uint64(samples)&(1<<36-1)
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	if _, err := f.WriteAt(b[:], 18); err != nil {
		return end, 0, err
	}
	return end, samplesDuration(samples, int(rate)), nil
}
