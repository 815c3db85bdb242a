package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

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

// CheckReach tries what the configuration names outside the process, as
// `tapedeck -t` does after the configuration itself is valid: the
// PostgreSQL catalog (connect and ping, no migration), the data directory
// of a SQLite catalog (writable, or creatable), and the S3 store
// (reachable, credentials accepted). Nothing is created or changed. Each
// problem comes back with the setting it is about.
func CheckReach(ctx context.Context, cfg config.Config) []error {
	var errs []error
	if dsn := cfg.Catalog.Database; dsn != "" {
		if err := pingPostgres(ctx, dsn); err != nil {
			errs = append(errs, fmt.Errorf("catalog.database: %w", err))
		}
	} else if err := writableDir(cfg.DataDir); err != nil {
		errs = append(errs, fmt.Errorf("data_dir: %w", err))
	}
	if s := cfg.Catalog.S3; s.Endpoint != "" {
		st, err := blob.NewS3Context(ctx, blob.S3Config{
			Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Bucket: s.Bucket,
			Region: s.Region, UseSSL: s.UseSSL, Prefix: s.Prefix,
		})
		if err == nil {
			err = st.Reachable(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("catalog.s3: %s: %w", s.Endpoint, err))
		}
	}
	return errs
}

func pingPostgres(ctx context.Context, dsn string) error {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("not a PostgreSQL DSN: %w", err)
	}
	if pc.ConnectTimeout == 0 || pc.ConnectTimeout > 5*time.Second {
		pc.ConnectTimeout = 5 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("cannot connect to %s:%d (database %q, user %q): %w", pc.Host, pc.Port, pc.Database, pc.User, unwrapPG(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// unwrapPG keeps pgx's connect error to its last cause: its full text
// repeats the DSN's host and user already named.
func unwrapPG(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// writableDir reports whether dir, or the nearest directory above it that
// exists (where it would be created), is a directory this user can write.
func writableDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s: %s is not a directory", dir, p)
			}
			if unix.Access(p, unix.W_OK|unix.X_OK) != nil {
				if p == abs {
					return fmt.Errorf("%s is not writable by this user", dir)
				}
				return fmt.Errorf("%s does not exist and %s is not writable by this user", dir, p)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) || p == filepath.Dir(p) {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
}
