package call

import "testing"

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

// A full queue refuses the frame (the recording then fails) instead of
// growing or waiting; a take frees it.
func TestRecQueueOverflow(t *testing.T) {
	var q recQueue
	q.init(320)
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
