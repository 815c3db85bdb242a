package call

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// slowStartCatalog holds a recording's start write until released and
// logs the order of the writes.
type slowStartCatalog struct {
	Catalog // not called by these tests
	mu      sync.Mutex
	log     []string
	entered chan struct{}
	release chan struct{}
}

func (c *slowStartCatalog) add(s string) {
	c.mu.Lock()
	c.log = append(c.log, s)
	c.mu.Unlock()
}

func (c *slowStartCatalog) writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

func (c *slowStartCatalog) Started(ctx context.Context, in catalog.Info) (string, error) {
	c.add("start")
	close(c.entered)
	<-c.release
	c.add("start written")
	return "RE1", nil
}

func (c *slowStartCatalog) Finished(ctx context.Context, in catalog.Info) error {
	c.add("end " + in.Status)
	return nil
}

func (c *slowStartCatalog) Paused(ctx context.Context, name string, on bool, q *meta.Quality) error {
	c.add("paused")
	return nil
}

func (c *slowStartCatalog) AccountSid(ctx context.Context, name string) (string, error) {
	return "", nil
}

// TestCatalogEndWaitsForStart: a call hung up while its recording's start
// is still being written (a short call on a busy database) writes the end
// after the start, never both at once: the end's insert for the name used
// to race the start's (UNIQUE constraint failed: recordings.name).
func TestCatalogEndWaitsForStart(t *testing.T) {
	fc := &slowStartCatalog{entered: make(chan struct{}), release: make(chan struct{})}
	r := newRig(t, func(o *Options) { o.Catalog = fc })
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	go ch.Record(RecordOptions{Name: "calls/short", Format: "wav", IfExists: "overwrite"})
	select {
	case <-fc.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the recording's start was never written")
	}
	if err := ch.Hangup(CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	// The recording ends (it left the live recordings) while its start
	// is still in the database's hands.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.m.recMu.Lock()
		_, live := r.m.live["calls/short"]
		r.m.recMu.Unlock()
		if !live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recording did not end with its call")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Its end must not be written before the start is: give a wrongly
	// ordered end write the time to show.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if w := fc.writes(); len(w) > 1 {
			t.Fatalf("writes %q: the end went out while the start was in flight", w)
		}
	}
	close(fc.release)
	deadline = time.Now().Add(10 * time.Second)
	for len(fc.writes()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("writes %q: the end never followed", fc.writes())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if w := fc.writes(); !slices.Equal(w, []string{"start", "start written", "end completed"}) {
		t.Fatalf("writes %q", w)
	}
}
