package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// OpenMeta opens the metadata store the configuration names: PostgreSQL
// when a DSN is set, otherwise SQLite under the data directory. The
// accounts' tokens are sealed with catalog.token_key, or else with the key
// kept in <data_dir>/token.key.
func OpenMeta(ctx context.Context, cfg config.Config) (meta.Store, error) {
	key := meta.WithTokenKeyFile(filepath.Join(cfg.DataDir, "token.key"))
	if cfg.Catalog.TokenKey != "" {
		key = meta.WithTokenKey(cfg.Catalog.TokenKey)
	}
	if dsn := cfg.Catalog.Database; dsn != "" {
		if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			return nil, fmt.Errorf("catalog.database: only PostgreSQL DSNs (postgres://...) are supported")
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		return meta.OpenPostgres(ctx, dsn, key)
	}
	return meta.OpenSQLite(cfg.DatabasePath(), key)
}

// openBlob returns the S3 store when configured, else nil (files stay on
// local disk where the recorder wrote them).
func openBlob(cfg config.Config) (blob.Store, error) {
	s := cfg.Catalog.S3
	if s.Endpoint == "" {
		return nil, nil
	}
	return blob.NewS3(blob.S3Config{
		Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Bucket: s.Bucket,
		Region: s.Region, UseSSL: s.UseSSL, Prefix: s.Prefix, KeepLocal: s.KeepLocal,
		PartSize: uint64(max(s.PartSizeMB, 16)) << 20, CreateBucket: true,
	})
}
