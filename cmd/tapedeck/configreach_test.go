package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// TestConfigCheckReachesStores: tapedeck -t also tries what the server
// would open at start — the PostgreSQL catalog, the SQLite catalog's data
// directory, the S3 store — and names the setting of each problem; a
// configuration whose stores answer passes.
func TestConfigCheckReachesStores(t *testing.T) {
	closed := testutil.FreeTCPPort(t) // nothing listens there
	for name, tc := range map[string]struct{ yaml, want string }{
		"PostgreSQL not answering": {fmt.Sprintf("catalog:\n  database: postgres://u:secretpw@127.0.0.1:%d/db?sslmode=disable\n", closed),
			fmt.Sprintf(`catalog.database: cannot connect to 127.0.0.1:%d (database "db", user "u")`, closed)},
		"not a PostgreSQL URL": {"catalog:\n  database: mysql://u@127.0.0.1/db\n",
			"catalog.database: only PostgreSQL URLs (postgres://user:password@host:5432/db) are supported"},
		"S3 not answering": {fmt.Sprintf("catalog:\n  s3:\n    endpoint: 127.0.0.1:%d\n    bucket: recs\n    access_key: k\n    secret_key: s\n", closed),
			fmt.Sprintf("catalog.s3: 127.0.0.1:%d: not reachable", closed)},
		"S3 key without secret": {"catalog:\n  s3:\n    endpoint: 127.0.0.1:9000\n    bucket: recs\n    access_key: k\n",
			"catalog.s3: access_key and secret_key go together"},
		"S3 endpoint with a scheme": {"catalog:\n  s3:\n    endpoint: http://127.0.0.1:9000\n    bucket: recs\n",
			`catalog.s3.endpoint: "http://127.0.0.1:9000" must be host:port without a scheme`},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := checkConfig(t, tc.yaml)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, output:\n%s\nwant exit 1 with %q", code, out, tc.want)
			}
			if strings.Contains(out, "secretpw") {
				t.Errorf("the password was shown:\n%s", out)
			}
		})
	}

	t.Run("stores answering", func(t *testing.T) {
		dsn := freshPGDatabase(t)
		gw := versitygw.Shared(t)
		yaml := fmt.Sprintf("catalog:\n  database: %s\n  s3:\n    endpoint: %s\n    bucket: not-made-yet\n    access_key: %s\n    secret_key: %s\n",
			dsn, gw.Endpoint(), versitygw.AccessKey, versitygw.SecretKey)
		if code, out := checkConfig(t, yaml); code != 0 || out != "tapedeck: configuration OK\n" {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		// nothing was created: -t changes nothing
		if ok, err := gw.Client().BucketExists(t.Context(), "not-made-yet"); err != nil || ok {
			t.Errorf("-t created the bucket (%v, %v)", ok, err)
		}
		bad := strings.Replace(yaml, "secret_key: "+versitygw.SecretKey, "secret_key: wrong", 1)
		if code, out := checkConfig(t, bad); code != 1 || !strings.Contains(out, "catalog.s3: "+gw.Endpoint()+": bucket not-made-yet:") {
			t.Errorf("wrong S3 secret: exit %d:\n%s", code, out)
		}
	})
}
