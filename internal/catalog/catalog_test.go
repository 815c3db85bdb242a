package catalog

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// countingStore is the real SQLite store, counting default-account lookups.
type countingStore struct {
	meta.Store
	ensures atomic.Int32
}

func (c *countingStore) EnsureDefaultAccount(ctx context.Context) (meta.Account, error) {
	c.ensures.Add(1)
	return c.Store.EnsureDefaultAccount(ctx)
}

// TestDefaultAccountLookedUpOnce: recordings without an account go to the
// default account, whose Sid is read from the database once, not once per
// recording (a query on the writer connection for every call otherwise).
func TestDefaultAccountLookedUpOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	svc := &Service{Meta: cs, Root: dir}

	acc, err := st.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"one", "two", "three"} {
		sid, err := svc.Started(ctx, Info{Name: name, Path: filepath.Join(dir, name+".wav"), Format: "wav", Started: time.Now()})
		if err != nil {
			t.Fatalf("Started(%s): %v", name, err)
		}
		row, err := st.RecordingBySid(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		if row.AccountSid != acc.Sid {
			t.Fatalf("recording %d in account %q, want the default %q", i, row.AccountSid, acc.Sid)
		}
	}
	if got, err := svc.AccountSid(ctx, ""); err != nil || got != acc.Sid {
		t.Fatalf(`AccountSid("") = %q, %v; want %q`, got, err, acc.Sid)
	}
	if n := cs.ensures.Load(); n != 1 {
		t.Fatalf("default account looked up %d times for 3 recordings and AccountSid; want once", n)
	}
}
