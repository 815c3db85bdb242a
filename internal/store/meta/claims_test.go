package meta

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

type nameClaims interface {
	ClaimRecordingName(ctx context.Context, name, node string) (string, error)
	ReleaseRecordingName(ctx context.Context, name, node string) error
	ReleaseNodeRecordingNames(ctx context.Context, node string) error
}

// testRecordingNameClaims: one node at a time holds a recording name, even
// when several claim it at once; the holder renews and releases it, and a
// node's start drops all of its claims.
func testRecordingNameClaims(t *testing.T, s Store) {
	c, ok := s.(nameClaims)
	if !ok {
		t.Fatalf("%T does not claim recording names", s)
	}
	ctx := tctx(t)
	if h, err := c.ClaimRecordingName(ctx, "a", "n1"); err != nil || h != "n1" {
		t.Fatalf("n1 claims a: %q %v", h, err)
	}
	if h, err := c.ClaimRecordingName(ctx, "a", "n2"); !errors.Is(err, ErrConflict) || h != "n1" {
		t.Fatalf("n2 claims a: %q %v, want ErrConflict held by n1", h, err)
	}
	if h, err := c.ClaimRecordingName(ctx, "a", "n1"); err != nil || h != "n1" {
		t.Fatalf("n1 renews a: %q %v", h, err)
	}
	if err := c.ReleaseRecordingName(ctx, "a", "n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClaimRecordingName(ctx, "a", "n2"); !errors.Is(err, ErrConflict) {
		t.Fatalf("a released by a node not holding it: %v", err)
	}
	if err := c.ReleaseRecordingName(ctx, "a", "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClaimRecordingName(ctx, "a", "n2"); err != nil {
		t.Fatalf("n2 claims a after n1 released it: %v", err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.ClaimRecordingName(ctx, "b", fmt.Sprintf("r%d", i))
			if err != nil && !errors.Is(err, ErrConflict) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("8 nodes claiming b at once: %d won", won)
	}

	if err := c.ReleaseNodeRecordingNames(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClaimRecordingName(ctx, "a", "n3"); err != nil {
		t.Errorf("a after n2's restart: %v", err)
	}
}

// Only PostgreSQL, which a cluster's nodes share, is a shared catalog: the
// catalog claims recording names in it and not in a node's own SQLite.
func TestSharedCatalogs(t *testing.T) {
	type shared interface{ Shared() bool }
	if s := openSQLiteTest(t); s.(shared).Shared() {
		t.Error("SQLite says it is shared")
	}
	if s := openPostgresTest(t); !s.(shared).Shared() {
		t.Error("PostgreSQL says it is not shared")
	}
}
