package meta

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSQLiteCallRows: what one recorded call writes in the SQLite
// catalog (its live row, then its final row with the CDR), on a catalog
// of a few thousand calls.
func BenchmarkSQLiteCallRows(b *testing.B) {
	s, acct := callRowsStore(b)
	b.ResetTimer()
	for i := range b.N {
		callRows(b, s, acct, 3000+i, nil)
	}
}

// callRowsStore opens a SQLite catalog in b's temporary directory (closed
// at b's end) holding 3,000 calls' rows, and returns it with the default
// account's sid.
func callRowsStore(b *testing.B) (*sqlStore, string) {
	b.Helper()
	st, err := OpenSQLite(b.TempDir() + "/tapedeck.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s := st.(*sqlStore)
	def, err := s.EnsureDefaultAccount(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3000 {
		callRows(b, s, def.Sid, i, nil)
	}
	return s, def.Sid
}

// BenchmarkSQLiteSharedCallRows: what the commit group writes at
// loadgen's 50 calls a second, a shared commit of three calls' live rows
// and three earlier calls' final rows with their CDRs, on a catalog of a
// few thousand calls. One op is one such commit; cpu-µs/call is the
// process's CPU (getrusage) per call's two rows.
func BenchmarkSQLiteSharedCallRows(b *testing.B) {
	s, acct := callRowsStore(b)
	s.group.window = time.Hour
	const k = 3
	batch := func(n int, prev []Recording) []Recording {
		rows := make([]Recording, k)
		for i := range rows {
			rows[i] = liveRow(acct, 10000+n*k+i)
		}
		s.group.mu.Lock()
		s.group.last = time.Now()
		s.group.mu.Unlock()
		errs := sharedWrites(b, s.group, 2*k-1, func(ctx context.Context, i int) error {
			if i < k {
				sid, created, err := s.StartRecording(ctx, rows[i])
				rows[i].Sid, rows[i].DateCreated = sid, created
				return err
			}
			r, c := finalOf(prev[i-k], acct, 10000+(n-1)*k+i-k)
			return s.PutRecordingCDR(ctx, r, c)
		})
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		return rows
	}
	prev := make([]Recording, k)
	for i := range prev {
		prev[i] = liveRow(acct, 9000+i)
		sid, created, err := s.StartRecording(context.Background(), prev[i])
		if err != nil {
			b.Fatal(err)
		}
		prev[i].Sid, prev[i].DateCreated = sid, created
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	c0 := cpu()
	for n := range b.N {
		prev = batch(n, prev)
	}
	b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N*k), "cpu-µs/call")
}
