package meta

import (
	"context"
	"testing"
)

// BenchmarkSQLiteCallRows: what one recorded call writes in the SQLite
// catalog (its live row, then its final row with the CDR), on a catalog
// of a few thousand calls.
func BenchmarkSQLiteCallRows(b *testing.B) {
	path := b.TempDir() + "/tapedeck.db"
	st, err := OpenSQLite(path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	def, err := s.EnsureDefaultAccount(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3000 {
		callRows(b, s, def.Sid, i, nil)
	}
	b.ResetTimer()
	for i := range b.N {
		callRows(b, s, def.Sid, 3000+i, nil)
	}
}
