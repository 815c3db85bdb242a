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
			batch, _ = q.take(batch)
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
	batch, done := q.take(nil)
	if len(batch) != 320 || done {
		t.Fatalf("take: %d samples, done %v", len(batch), done)
	}
	if !q.push(frame) {
		t.Fatal("no room after take")
	}
	q.close()
	if batch, done = q.take(batch); len(batch) != 160 || !done {
		t.Fatalf("take after close: %d samples, done %v", len(batch), done)
	}
}
