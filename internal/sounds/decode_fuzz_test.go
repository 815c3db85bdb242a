package sounds

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes, as every supported file kind, through
// the decoder that sound: files and fetched sound:http media go through.
// It must never panic, and what it returns must stay proportionate to what
// it was given: 8 kHz output from input at 1 kHz or more is at most 8 samples
// per input byte, so a small file can never claim a huge clip.
func FuzzDecode(f *testing.F) {
	f.Add(wavBytes(8000, 1, ramp(160)), "wav")
	f.Add(wavBytes(48000, 2, ramp(960)), "wav")
	f.Add(wavRaw(wavFloat, 16000, 1, 32, make([]byte, 64)), "wav")
	f.Add(wavRaw(wavFloat, 16000, 1, 64, make([]byte, 64)), "wav")
	f.Add(wavRaw(wavMulaw, 8000, 1, 8, []byte{0xff, 0x7f, 0x00}), "wav")
	f.Add(wavRaw(wavPCM, 1000, 16, 24, make([]byte, 96)), "wav")
	f.Add(wavRaw(wavExtensible, 8000, 1, 16, make([]byte, 8)), "wav")
	f.Add(wavRaw(wavGSM, 8000, 1, 0, make([]byte, 65)), "wav")
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"), "wav")
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"), "wav")
	f.Add(slnBytes(ramp(33)), "sln16")
	f.Add(slnBytes(ramp(33)), "sln48")
	f.Add(ulawBytes(ramp(10)), "ulaw")
	f.Add([]byte{1, 2, 3}, "alaw")
	f.Add([]byte{1, 2, 3}, "")
	f.Add([]byte{1, 2, 3}, "mp4")
	f.Fuzz(func(t *testing.T, b []byte, ext string) {
		c, err := Decode(bytes.NewReader(b), ext)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a clip", err)
			}
			return
		}
		if got, limit := len(c.pcm), 8*len(b)+8; got > limit {
			t.Fatalf("%d input bytes (%q) decoded to %d samples, over %d", len(b), ext, got, limit)
		}
		// Reading the whole clip back must work too.
		buf := make([]int16, 160)
		for i := 0; ; i++ {
			n, err := c.Read(buf)
			if err != nil || n == 0 {
				break
			}
			if i > len(c.pcm) {
				t.Fatal("Read never ends")
			}
		}
	})
}

func TestDecodeUnknownExtension(t *testing.T) {
	if _, err := Decode(bytes.NewReader([]byte{1}), "mp4"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Decode(.mp4) = %v, want ErrUnsupported", err)
	}
}
