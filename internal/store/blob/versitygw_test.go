package blob

// The S3 tests run against a real S3-compatible server, versitygw, started
// once per test run by internal/testutil/versitygw (which also finds the
// binary and applies the skip / fail-under-CI=true rule).

import (
	"fmt"
	"os"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

func TestMain(m *testing.M) {
	code := m.Run()
	versitygw.Stop()
	if why := versitygw.SkipReason(); why != "" {
		fmt.Fprintln(os.Stderr, "blob: S3 tests SKIPPED:", why)
	}
	os.Exit(code)
}

// needS3 returns the shared versitygw server, starting it on first use. When
// the binary is missing the test skips (fails under CI=true).
func needS3(t testing.TB) *versitygw.Server {
	t.Helper()
	return versitygw.Shared(t)
}

// s3Config returns an S3Config for bucket on the test server g.
func s3Config(g *versitygw.Server, bucket string) S3Config {
	return S3Config{
		Endpoint:  g.Endpoint(),
		AccessKey: versitygw.AccessKey,
		SecretKey: versitygw.SecretKey,
		Bucket:    bucket,
	}
}
