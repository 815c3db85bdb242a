package twilio

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// bigWAV writes a 16-bit WAV of minutes at rate Hz with chans channels (a
// tone per channel) to path.
func bigWAV(b *testing.B, path string, rate, chans, minutes int) {
	b.Helper()
	n := rate * 60 * minutes
	buf := make([]byte, 44+2*chans*n)
	copy(buf, "RIFF")
	binary.LittleEndian.PutUint32(buf[4:], uint32(36+2*chans*n))
	copy(buf[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(buf[16:], 16)
	binary.LittleEndian.PutUint16(buf[20:], 1)
	binary.LittleEndian.PutUint16(buf[22:], uint16(chans))
	binary.LittleEndian.PutUint32(buf[24:], uint32(rate))
	binary.LittleEndian.PutUint32(buf[28:], uint32(2*chans*rate))
	binary.LittleEndian.PutUint16(buf[32:], uint16(2*chans))
	binary.LittleEndian.PutUint16(buf[34:], 16)
	copy(buf[36:], "data")
	binary.LittleEndian.PutUint32(buf[40:], uint32(2*chans*n))
	period := rate / 400 // a 400 Hz tone, 800 Hz on the right
	tab := make([]int16, period)
	for i := range tab {
		tab[i] = int16(8000 * math.Sin(2*math.Pi*float64(i)/float64(period)))
	}
	for i := range n {
		for c := range chans {
			binary.LittleEndian.PutUint16(buf[44+2*(i*chans+c):], uint16(tab[(i*(c+1))%period]))
		}
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMP3FirstByte: a 30-minute recording's .mp3 made on request,
// from an empty cache each time: the first byte (ttfb_ms) and the whole
// MP3 (total_s), for 8 kHz mono (the recorder's encoder), a wav16 (16 kHz)
// recording and an 8 kHz dual-channel one as stereo (both through the
// lame program).
func BenchmarkMP3FirstByte(b *testing.B) {
	if _, err := exec.LookPath("lame"); err != nil {
		b.Skip("the lame program is not installed")
	}
	for _, c := range []struct {
		name, format, query string
		rate, chans         int
	}{{"8k-mono", "wav", "", 8000, 1}, {"16k-mono", "wav16", "", 16000, 1}, {"8k-stereo", "wav", "?RequestedChannels=2", 8000, 2}} {
		b.Run(c.name, func(b *testing.B) {
			fx := newFixture(b, 0)
			sid := meta.NewRecordingSid()
			bigWAV(b, filepath.Join(fx.cat.Root, "long.wav"), c.rate, c.chans, 30)
			if err := fx.cat.Meta.PutRecording(context.Background(), meta.Recording{Sid: sid, AccountSid: fx.acc.Sid, Name: "long",
				FilePath: "long.wav", Format: c.format, Status: meta.StatusCompleted, Duration: 1800, Channels: c.chans}); err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(fx.srv)
			defer hs.Close()
			url := hs.URL + "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + sid + ".mp3" + c.query
			var ttfb, total time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				cached, _ := filepath.Glob(filepath.Join(fx.srv.o.CacheDir, "*"))
				for _, f := range cached {
					os.Remove(f)
				}
				b.StartTimer()
				start := time.Now()
				res, err := hs.Client().Get(url)
				if err != nil {
					b.Fatal(err)
				}
				first := make([]byte, 4)
				if _, err := io.ReadFull(res.Body, first); err != nil || res.StatusCode != 200 {
					b.Fatalf("%d %v", res.StatusCode, err)
				}
				ttfb += time.Since(start)
				if _, err := io.Copy(io.Discard, res.Body); err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				total += time.Since(start)
			}
			b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ttfb_ms")
			b.ReportMetric(total.Seconds()/float64(b.N), "total_s")
		})
	}
}
