package call

import (
	"testing"
	"time"
)

// The media path's share of a recording: copying a 20 ms frame into the
// recording's queue, and the writer taking the batch. 0 allocations.
func BenchmarkRecQueuePush(b *testing.B) {
	var q recQueue
	q.init(16000)
	frame := make([]int16, 160)
	var batch []int16
	b.ReportAllocs()
	b.SetBytes(160 * 2)
	for i := 0; b.Loop(); i++ {
		if !q.push(frame) {
			b.Fatal("overflow")
		}
		if i%12 == 11 { // the writer takes a batch every 250 ms
			batch, _, _ = q.take(batch, nil)
		}
	}
}

// stickWriter makes q's writer step block in a write (a stalled disk)
// until the test ends, after which the queue holds at most its bound; it
// returns once the step has been stuck for the queue's stall limit.
func stickWriter(t *testing.T, q *recQueue) {
	t.Helper()
	release, started := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	q.mu.Lock()
	q.stall = 20 * time.Millisecond
	q.run = func() {
		select {
		case <-started:
		default:
			close(started)
		}
		<-release
	}
	q.mu.Unlock()
	q.signal()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		stuck := q.stuckLocked()
		q.mu.Unlock()
		if stuck {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer step never got stuck")
		}
		time.Sleep(time.Millisecond)
	}
}

// A full queue whose writer is stuck in a write (a stalled disk) refuses
// the frame (the recording then fails) instead of growing or waiting; a
// take frees it.
func TestRecQueueOverflow(t *testing.T) {
	var q recQueue
	q.init(320)
	stickWriter(t, &q)
	frame := make([]int16, 160)
	if !q.push(frame) || !q.push(frame) {
		t.Fatal("two frames fit in 320 samples")
	}
	if q.push(frame) {
		t.Fatal("a third frame fitted in a full queue")
	}
	batch, _, done := q.take(nil, nil)
	if len(batch) != 320 || done {
		t.Fatalf("take: %d samples, done %v", len(batch), done)
	}
	if !q.push(frame) {
		t.Fatal("no room after take")
	}
	q.close()
	if batch, _, done = q.take(batch, nil); len(batch) != 160 || !done {
		t.Fatalf("take after close: %d samples, done %v", len(batch), done)
	}
}

// sliceWriter is a recorder.Writer that keeps what it is given.
type sliceWriter struct{ got []int16 }

func (w *sliceWriter) Write(pcm []int16) error { w.got = append(w.got, pcm...); return nil }

// Silence takes no room in a queue: a sender that goes on after a pause
// longer than the queue's bound (silence suppression, a hold) has the
// pause filled with silence at once, which must not overflow it (the
// recording failed). The writer writes sound and silence in their order.
func TestRecQueueSilenceTakesNoRoom(t *testing.T) {
	var q recQueue
	q.init(320)
	stickWriter(t, &q)
	sound := make([]int16, 160)
	for i := range sound {
		sound[i] = int16(i + 1)
	}
	if !q.pushAudio(sound) {
		t.Fatal("a frame does not fit")
	}
	for range 100 { // 2 s of silence, six times the bound
		if !q.pushAudio(make([]int16, 160)) {
			t.Fatal("silence overflowed the queue")
		}
	}
	if !q.pushAudio(sound) {
		t.Fatal("the frame after the silence does not fit")
	}
	if q.pushAudio(sound) {
		t.Fatal("a third frame of sound fitted in a full queue")
	}
	batch, gaps, _ := q.take(nil, nil)
	var w sliceWriter
	n, err := writeBatch(&w, batch, gaps)
	if err != nil || n != 320+16000 || len(w.got) != n {
		t.Fatalf("wrote %d (%d), %v; want %d", n, len(w.got), err, 320+16000)
	}
	for i, v := range w.got {
		want := int16(0)
		if i < 160 {
			want = sound[i]
		} else if i >= 16160 {
			want = sound[i-16160]
		}
		if v != want {
			t.Fatalf("sample %d = %d, want %d", i, v, want)
		}
	}
	if batch, gaps, _ = q.take(batch, gaps); len(batch) != 0 || len(gaps) != 0 {
		t.Fatalf("a second take: %d samples, %d gaps", len(batch), len(gaps))
	}
}

// A burst of audio much longer than the queue's bound, handed over at once
// while the writer is healthy (the backlog in the kernel's socket buffers
// that a process or VM stall leaves, read when the process goes on), fits:
// the writer is fine, the disk did keep up. It fits up to recQueueBurst;
// more than that overflows even so (memory stays bounded).
func TestRecQueueBurstWithHealthyWriter(t *testing.T) {
	var q recQueue
	q.init(int(recQueueDuration * 8000 / time.Second))
	frame := make([]int16, 160)
	for i := range frame {
		frame[i] = int16(i + 1)
	}
	frames := int(8 * time.Second / (20 * time.Millisecond)) // 8 s at once
	for i := range frames {
		if !q.push(frame) {
			t.Fatalf("overflow at frame %d of an 8 s burst with a healthy writer", i)
		}
	}
	batch, _, _ := q.take(nil, nil)
	if len(batch) != frames*160 {
		t.Fatalf("took %d samples, want %d", len(batch), frames*160)
	}
	recBufs.put(batch)
	n := 0
	for q.push(frame) {
		if n++; n > q.hard/160 {
			t.Fatal("the queue grew past recQueueBurst")
		}
	}
	if want := int(recQueueBurst / (20 * time.Millisecond)); n != want {
		t.Fatalf("the queue held %d frames, want %d (recQueueBurst)", n, want)
	}
}
