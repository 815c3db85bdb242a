package call

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// delayCatalog logs each write with whether it may wait to share its
// commit (meta.CommitDelayed).
type delayCatalog struct {
	Catalog // not called by these tests
	mu      sync.Mutex
	log     []string
}

func (c *delayCatalog) add(op, name string, ctx context.Context) {
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf("%s %s delay=%v", op, name, meta.CommitDelayed(ctx)))
	c.mu.Unlock()
}

func (c *delayCatalog) Started(ctx context.Context, in catalog.Info) (string, error) {
	c.add("start", in.Name, ctx)
	return "RE1", nil
}

func (c *delayCatalog) Finished(ctx context.Context, in catalog.Info) error {
	c.add("end", in.Name, ctx)
	return nil
}

func (c *delayCatalog) Paused(ctx context.Context, name string, on bool, q *meta.Quality) error {
	return nil
}

func (c *delayCatalog) AccountSid(ctx context.Context, name string) (string, error) { return "", nil }

func (c *delayCatalog) await(t *testing.T, entry string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		found := slices.Contains(c.log, entry)
		log := slices.Clone(c.log)
		c.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog writes %q: no %q", log, entry)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCatalogWritesThatMayWait: the row nothing is answered after — a
// recording's live row written once its file is open (only its
// RecordingStarted follows it) — may wait to share its commit with other
// calls' rows (meta.WithCommitDelay); a row-first recording's live row
// (its API call answers after it), the final row of a stop asked for and
// the final row of a hangup (RecordingFinished, StasisEnd and
// ChannelDestroyed follow it, and finishing a recording never delays
// them) may not.
func TestCatalogWritesThatMayWait(t *testing.T) {
	fc := &delayCatalog{}
	r := newRig(t, func(o *Options) { o.Catalog = fc })
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	if _, err := ch.Record(RecordOptions{Name: "calls/a", Format: "wav", IfExists: "overwrite"}); err != nil {
		t.Fatal(err)
	}
	fc.await(t, "start calls/a delay=true")
	if err := r.m.StopRecording("calls/a"); err != nil {
		t.Fatal(err)
	}
	fc.await(t, "end calls/a delay=false")
	if _, err := ch.Record(RecordOptions{Name: "calls/b", Format: "wav", IfExists: "overwrite", rowFirst: true}); err != nil {
		t.Fatal(err)
	}
	fc.await(t, "start calls/b delay=false")
	if err := ch.Hangup(CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	fc.await(t, "end calls/b delay=false")
}
