package call

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/sip"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// stallCatalog is a catalog on a stalled database: its final writes
// (Finished), and its start writes when stallStart is set, do not return
// until release is closed, whatever their context says — as a commit that
// SQLite has begun waits for a stalled disk's write or fsync. (A stalled
// disk cannot be made on demand under a real database in a test; this is
// the fault stand-in the project allows for it.)
type stallCatalog struct {
	Catalog    // not called by these tests
	stallStart bool
	release    chan struct{}
	entered    chan string // "start NAME" or "end NAME", as each write begins

	releaseOnce sync.Once
	mu          sync.Mutex
	finished    []catalog.Info // final writes that returned
}

// unblock lets the held writes return (once; again is a no-op).
func (c *stallCatalog) unblock() { c.releaseOnce.Do(func() { close(c.release) }) }

// awaitFinished waits for a final write to have returned and returns them.
func (c *stallCatalog) awaitFinished(t *testing.T) []catalog.Info {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.done()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the final row was never written once the database came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c.done()
}

// recordOnceFree records name on ch as soon as the name is free (the end
// that wrote its final row frees it just after that write returns),
// failing on anything but the conflict of a name still taken, and waits
// for the new recording's start row.
func (c *stallCatalog) recordOnceFree(t *testing.T, ch *Channel, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := ch.Record(RecordOptions{Name: name, Format: "wav", IfExists: "overwrite"})
		if err == nil {
			break
		}
		if !errorsIs(err, ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("a new recording of the name once its final row is written: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.await(t, "start "+name)
}

func newStallCatalog(stallStart bool) *stallCatalog {
	return &stallCatalog{stallStart: stallStart, release: make(chan struct{}), entered: make(chan string, 16)}
}

func (c *stallCatalog) Started(ctx context.Context, in catalog.Info) (string, error) {
	c.entered <- "start " + in.Name
	if c.stallStart {
		<-c.release
	}
	return "RE1", nil
}

func (c *stallCatalog) Finished(ctx context.Context, in catalog.Info) error {
	c.entered <- "end " + in.Name
	<-c.release
	c.mu.Lock()
	c.finished = append(c.finished, in)
	c.mu.Unlock()
	return nil
}

func (c *stallCatalog) Paused(ctx context.Context, name string, on bool, q *meta.Quality) error {
	return nil
}

func (c *stallCatalog) AccountSid(ctx context.Context, name string) (string, error) { return "", nil }

func (c *stallCatalog) await(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-c.entered:
		if got != want {
			t.Fatalf("catalog write %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no catalog write %q", want)
	}
}

func (c *stallCatalog) done() []catalog.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]catalog.Info(nil), c.finished...)
}

// TestHangupDoesNotWaitForAStalledCatalog: a hangup waits for its
// recording's catalog end at most hangupCatalogWait. A database stalled
// under the final row's write (stallEnd) or under the start row's write
// still in flight (stallStart, the final write queued behind it) delays
// the row, not the call: StasisEnd and ChannelDestroyed go out and the
// hangup returns while the write is still held. The call's record is
// written once: with the final row when that write had taken it, else by
// the channel (CallRecord.Stored false) and not with the row. Until the
// row is written the name is not free for a new recording.
func TestHangupDoesNotWaitForAStalledCatalog(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stallStart bool
		cdrWithRow bool
	}{
		{"stallEnd", false, true},
		{"stallStart", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newStallCatalog(tc.stallStart)
			ended := make(chan CallRecord, 1)
			r := newRig(t, func(o *Options) {
				o.Catalog = fc
				o.OnCallEnded = func(rec CallRecord) { ended <- rec }
			})
			// After the rig's cleanup, so before it: its HangupAll must
			// not wait on a database still held.
			t.Cleanup(fc.unblock)
			ch, _, _ := r.inbound("app", offer(t, 5000, ""))
			if _, err := ch.Record(RecordOptions{Name: "calls/stall", Format: "wav", IfExists: "overwrite"}); err != nil {
				t.Fatal(err)
			}
			fc.await(t, "start calls/stall")
			if !tc.stallStart {
				r.ev.expect("RecordingStarted")
			}

			hungUp := make(chan struct{})
			go func() {
				defer close(hungUp)
				ch.Ended(sip.EndRemoteBye) // the caller's BYE: the whole teardown, on this goroutine
			}()
			if !tc.stallStart {
				fc.await(t, "end calls/stall") // the final write is held
			}
			// Without the bound the hangup waits as long as the
			// database: these never come while it is held.
			deadline := time.After(hangupCatalogWait + 10*time.Second)
			select {
			case <-hungUp:
			case <-deadline:
				t.Fatal("the hangup waits for the stalled catalog")
			}
			r.ev.expect("StasisEnd")
			r.ev.expect("ChannelDestroyed")
			var rec CallRecord
			select {
			case rec = <-ended:
			case <-deadline:
				t.Fatal("no call record after the hangup")
			}
			if rec.Stored != tc.cdrWithRow {
				t.Fatalf("CallRecord.Stored %v: want %v (the call's record with the final row only if its write had taken it)", rec.Stored, tc.cdrWithRow)
			}
			if got := fc.done(); len(got) != 0 {
				t.Fatalf("%d final writes returned while the database was held", len(got))
			}
			// The name stays taken until its final row is written: a new
			// recording of it would share the row the late write finishes.
			ch2, _, _ := r.inbound("app", offer(t, 5002, ""))
			if _, err := ch2.Record(RecordOptions{Name: "calls/stall", Format: "wav", IfExists: "overwrite"}); !errorsIs(err, ErrConflict) {
				t.Fatalf("a new recording of the name while its final row is held: %v, want a conflict", err)
			}

			fc.unblock()
			if tc.stallStart {
				fc.await(t, "end calls/stall") // queued behind the start row
			}
			got := fc.awaitFinished(t)
			if len(got) != 1 || got[0].Name != "calls/stall" || got[0].Status != "completed" {
				t.Fatalf("final writes %+v: want one, calls/stall completed", got)
			}
			if (got[0].CDR != nil) != tc.cdrWithRow {
				t.Fatalf("the final row carries the call's record: %v, want %v", got[0].CDR != nil, tc.cdrWithRow)
			}
			if tc.cdrWithRow && got[0].CDR.ChannelID != rec.ChannelID {
				t.Fatalf("the final row's call record is %q's, want %q's", got[0].CDR.ChannelID, rec.ChannelID)
			}
			// Written: the name is free again.
			fc.recordOnceFree(t, ch2, "calls/stall")
		})
	}
}

// TestNameTakenUntilTheFinalRow: a recording's name leaves the live
// recordings before its final row is written; until that write returns
// (here held by the database, on a stop asked for, which waits for it) a
// new recording of the name is refused as one in progress, and once it
// returns the name is free.
func TestNameTakenUntilTheFinalRow(t *testing.T) {
	fc := newStallCatalog(false)
	r := newRig(t, func(o *Options) { o.Catalog = fc })
	t.Cleanup(fc.unblock)
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	if _, err := ch.Record(RecordOptions{Name: "calls/taken", Format: "wav", IfExists: "overwrite"}); err != nil {
		t.Fatal(err)
	}
	fc.await(t, "start calls/taken")
	stopped := make(chan error, 1)
	go func() { stopped <- r.m.StopRecording("calls/taken") }()
	fc.await(t, "end calls/taken") // the final write is held
	if r.m.isLive("calls/taken") {
		t.Fatal("the stopped recording is still listed live")
	}
	ch2, _, _ := r.inbound("app", offer(t, 5002, ""))
	if _, err := ch2.Record(RecordOptions{Name: "calls/taken", Format: "wav", IfExists: "overwrite"}); !errorsIs(err, ErrConflict) {
		t.Fatalf("a new recording of the name while its final row is written: %v, want a conflict", err)
	}
	fc.unblock()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop never returned once the database answered")
	}
	fc.recordOnceFree(t, ch2, "calls/taken")
}

// TestStopDoesNotWaitForAStalledCatalog: a stop asked for waits for the
// final row at most its bound (stopCatalogWait; shortened here): with the
// write held by the database it returns and RecordingFinished goes out,
// the name staying taken until the write returns.
func TestStopDoesNotWaitForAStalledCatalog(t *testing.T) {
	fc := newStallCatalog(false)
	r := newRig(t, func(o *Options) { o.Catalog = fc })
	r.m.catalogWait = 500 * time.Millisecond
	t.Cleanup(fc.unblock)
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	if _, err := ch.Record(RecordOptions{Name: "calls/stop", Format: "wav", IfExists: "overwrite"}); err != nil {
		t.Fatal(err)
	}
	fc.await(t, "start calls/stop")
	r.ev.expect("RecordingStarted")
	stopped := make(chan error, 1)
	go func() { stopped <- r.m.StopRecording("calls/stop") }()
	fc.await(t, "end calls/stop") // the final write is held
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop waits for the stalled catalog")
	}
	r.ev.expect("RecordingFinished")
	if got := fc.done(); len(got) != 0 {
		t.Fatalf("%d final writes returned while the database was held", len(got))
	}
	if _, err := ch.Record(RecordOptions{Name: "calls/stop", Format: "wav", IfExists: "overwrite"}); !errorsIs(err, ErrConflict) {
		t.Fatalf("a new recording of the name while its final row is held: %v, want a conflict", err)
	}
	fc.unblock()
	if got := fc.awaitFinished(t); len(got) != 1 || got[0].Status != "completed" {
		t.Fatalf("final writes %+v: want one, completed", got)
	}
	fc.recordOnceFree(t, ch, "calls/stop")
}
