package meta

import (
	"database/sql"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
)

// A database that met migration 3 before migration 2 existed (features
// land in parallel) still migrates when 2 arrives, and gets its table.
func TestMigrationsOutOfOrder(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	file := func(table string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE " + table + " (id INTEGER);\n")}
	}
	ctx := tctx(t)
	early := fstest.MapFS{"00001_a.sql": file("a"), "00003_c.sql": file("c")}
	if err := migrate(ctx, db, goose.DialectSQLite3, early, nil); err != nil {
		t.Fatal(err)
	}
	late := fstest.MapFS{"00001_a.sql": file("a"), "00002_b.sql": file("b"), "00003_c.sql": file("c")}
	if err := migrate(ctx, db, goose.DialectSQLite3, late, nil); err != nil {
		t.Fatalf("migration 2 arriving after 3: %v", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO b (id) VALUES (1)"); err != nil {
		t.Fatalf("table of the late migration: %v", err)
	}
}
