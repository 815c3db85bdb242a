package catalog

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
)

// TestPostgresHangupReleasesClaimWithFinalRow: on a shared (PostgreSQL)
// catalog, a recording whose name this node claimed (ClaimName) and that
// its call's hangup ended (Info.CDR) writes its final row, its call's CDR
// and the claim's release in one request to the database: a cluster node's
// recorded call ends with one round trip, not two (the row with the CDR,
// then the release). The claim is gone: another node can claim the name at
// once. Without ReleaseClaim the claim stays for the caller to release.
func TestPostgresHangupReleasesClaimWithFinalRow(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.FreshDatabase(t, "tapedeck_catrelease")
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("SKIP: the test DSN is not a URL with a host: %v", err)
	}
	p := testutil.StartCountingProxy(t, u.Host)
	u.Host = p.Addr()
	st, err := meta.OpenPostgres(ctx, u.String(), meta.WithTokenKey("test"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	acc, err := st.EnsureDefaultAccount(ctx)
	must(t, err)
	dir := t.TempDir()
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	defer svc.Close()
	other := st.(nameClaimer)
	t0 := time.Now().UTC().Truncate(time.Second)
	record := func(i int, release bool) (Info, int64) {
		t.Helper()
		name := "calls/r" + string(rune('0'+i))
		path := filepath.Join(dir, name+".wav")
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, wavBytes(8000), 0o644))
		must(t, svc.ClaimName(ctx, name, false))
		in := Info{Name: name, Path: path, Format: "wav", ContentType: "audio/wav", Started: t0, Status: "in-progress"}
		_, err := svc.Started(ctx, in)
		must(t, err)
		in.Status, in.Duration, in.ReleaseClaim = "completed", time.Second, release
		in.CDR = &meta.CDR{Sid: "CA" + string(rune('0'+i)), AccountSid: acc.Sid, ChannelID: "n1-" + string(rune('0'+i)) + ".1", Status: "completed",
			StartTime: t0, AnswerTime: t0, EndTime: t0.Add(time.Second), Duration: 1, Billsec: 1}
		before := p.Writes()
		released, err := svc.FinishedReleasing(ctx, in)
		must(t, err)
		if released != release {
			t.Fatalf("%s: released %v, want %v", name, released, release)
		}
		return in, p.Writes() - before
	}
	// The first prepares the statement on the connection.
	for i := 1; i <= 3; i++ {
		in, n := record(i, true)
		if i > 1 && n != 1 {
			t.Fatalf("%s: %d requests for the final row, its CDR and the claim's release; want 1", in.Name, n)
		}
		if holder, err := other.ClaimRecordingName(ctx, in.Name, "n2"); err != nil || holder != "n2" {
			t.Fatalf("%s: another node's claim after the final row: %q %v; want it granted (n1's released)", in.Name, holder, err)
		}
		row, err := st.RecordingByName(ctx, in.Name)
		must(t, err)
		if row.Status != meta.StatusCompleted {
			t.Fatalf("%s: row %+v", in.Name, row)
		}
		if _, total, err := st.(meta.CDRs).ListCDRs(ctx, meta.CDRQuery{AccountSid: acc.Sid}); err != nil || total != i {
			t.Fatalf("CDRs: %d %v, want %d", total, err, i)
		}
	}
	// Not asked to: the claim stays (the caller holds none, or releases it).
	in, _ := record(4, false)
	if holder, err := other.ClaimRecordingName(ctx, in.Name, "n2"); err == nil || holder != "n1" {
		t.Fatalf("%s: another node's claim without ReleaseClaim: %q %v; want n1's kept", in.Name, holder, err)
	}
}
