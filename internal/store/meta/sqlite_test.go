package meta

import (
	"path/filepath"
	"testing"
)

func openSQLiteTest(t testing.TB) Store {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "data", "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestSQLite(t *testing.T) { runStoreTests(t, openSQLiteTest) }

func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "it's #1?.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := tctx(t)
	def, err := s.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRec(def.Sid, 1)
	mustPut(t, s, r)
	var mode string
	if err := s.(*sqlStore).w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	var cache int
	if err := s.(*sqlStore).w.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -writerCacheKiB {
		t.Fatalf("writer cache_size = %d, %v; want %d (KiB)", cache, err, -writerCacheKiB)
	}
	if err := s.(*sqlStore).r.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -readerCacheKiB {
		t.Fatalf("reader cache_size = %d, %v; want %d (KiB)", cache, err, -readerCacheKiB)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenSQLite(path) // migrations again: a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	def2, err := s.EnsureDefaultAccount(ctx)
	if err != nil || def2 != def {
		t.Fatalf("default after reopen = %+v, %v; want %+v", def2, err, def)
	}
	got, err := s.Recording(ctx, def.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	checkRec(t, got, normRec(r))
	if _, err := OpenSQLite(""); err == nil {
		t.Fatal("OpenSQLite(\"\") succeeded")
	}
}
