package sip

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// failingWrites is a location store whose first writes fail (a database
// that does not answer for a while), then the real SQLite one's.
type failingWrites struct {
	metaLocations
	fail atomic.Int32 // writes left to fail
}

func (f *failingWrites) ApplyBindings(ctx context.Context, changes []BindingChange) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("location store down (test)")
	}
	return f.metaLocations.ApplyBindings(ctx, changes)
}

func sqliteLocations(t *testing.T) metaLocations {
	t.Helper()
	st, err := meta.OpenSQLite(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return metaLocations{st.(meta.Registrations)}
}

// TestRegistrarIdleWriterSleeps: a registrar with a location store and
// nothing to write runs no periodic timer (its writer made a pass every
// second, a wake-up of the process at its own phase on every node), and a
// change is still written at once.
func TestRegistrarIdleWriterSleeps(t *testing.T) {
	shortRetry(t)
	env := startRegistrarOn(t, RegistrarOptions{}, DigestOptions{}, sqliteLocations(t))
	// Ten retry periods with nothing to write: no pass.
	time.Sleep(10 * registrarRetry)
	if n := env.r.writerPasses.Load(); n != 0 {
		t.Fatalf("idle writer made %d passes in %v, want 0", n, 10*registrarRetry)
	}
	if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "secret1001"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	waitPasses(t, env.r, 1)
	time.Sleep(10 * registrarRetry)
	if n := env.r.writerPasses.Load(); n != 1 {
		t.Fatalf("writer made %d passes for one change, want 1", n)
	}
}

// TestRegistrarRetriesFailedWrite: a write the store refused is written
// again registrarRetry later with no further change (as the once-a-second
// ticker did), also when the failed write was a Flush's; once written, the
// writer is idle again.
func TestRegistrarRetriesFailedWrite(t *testing.T) {
	shortRetry(t)
	for _, viaFlush := range []bool{false, true} {
		loc := &failingWrites{metaLocations: sqliteLocations(t)}
		env := startRegistrarOn(t, RegistrarOptions{}, DigestOptions{}, loc)
		if viaFlush {
			// The writer writes the REGISTER's change; Flush's write of a
			// second change fails, then the writer's first two retries.
			if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "secret1001"); res.StatusCode != 200 {
				t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
			}
			waitBound(t, loc, env, "sip:1001@127.0.0.1:5071")
			loc.fail.Store(3)
			// A change queued without waking the writer: only Flush writes it.
			env.r.dirtyMu.Lock()
			env.r.dirty["1001"] = &pendingChange{ops: map[string]*Binding{"sip:1001@127.0.0.1:5072": {
				User: "1001", Contact: "sip:1001@127.0.0.1:5072", Expires: env.clock.Now().Add(time.Hour)}}}
			env.r.dirtyMu.Unlock()
			env.r.Flush()
			waitBound(t, loc, env, "sip:1001@127.0.0.1:5072")
		} else {
			loc.fail.Store(3)
			if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "secret1001"); res.StatusCode != 200 {
				t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
			}
			waitBound(t, loc, env, "sip:1001@127.0.0.1:5071")
		}
		if n := env.r.StoreErrs.Load(); n != 3 {
			t.Fatalf("flush %v: %d failed writes, want 3", viaFlush, n)
		}
		passes := env.r.writerPasses.Load()
		time.Sleep(10 * registrarRetry)
		if n := env.r.writerPasses.Load(); n != passes {
			t.Fatalf("flush %v: %d more passes after the write succeeded, want 0", viaFlush, n-passes)
		}
	}
}

func waitPasses(t *testing.T, r *Registrar, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); r.writerPasses.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("writer passes %d, want %d", r.writerPasses.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitBound waits until the store holds contact for 1001.
func waitBound(t *testing.T, loc LocationStore, env *regEnv, contact string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		bs, err := loc.UserBindings(context.Background(), "1001", env.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.Contact == contact {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not in the store after 5 s (failed writes %d): %+v", contact, env.r.StoreErrs.Load(), bs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shortRetry makes the registrars the test starts retry after 20 ms.
func shortRetry(t *testing.T) {
	d := registrarRetry
	registrarRetry = 20 * time.Millisecond
	t.Cleanup(func() { registrarRetry = d })
}
