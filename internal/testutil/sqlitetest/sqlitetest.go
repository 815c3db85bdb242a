// Package sqlitetest gives tests a real SQLite catalog and a raw
// connection to the same database, for what a test does under the
// catalog's feet (triggers that refuse writes).
package sqlitetest

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// DB is a real SQLite catalog (Store) with a raw connection (Raw) to its
// database file.
type DB struct {
	Store meta.Store
	Raw   *sql.DB
}

// Open opens the SQLite catalog at path (made when missing) and a raw
// connection to it; both are closed when t ends.
func Open(t testing.TB, path string) *DB {
	t.Helper()
	st, err := meta.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &DB{Store: st, Raw: raw}
}

// Exec runs q on the raw connection; an error fails t.
func (d *DB) Exec(t testing.TB, q string) {
	t.Helper()
	if _, err := d.Raw.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Refuse makes the database refuse op (INSERT or UPDATE) on table, with
// a trigger (<table>_<op>_refused), until Allow drops it.
func (d *DB) Refuse(t testing.TB, table, op string) {
	t.Helper()
	d.Exec(t, `CREATE TRIGGER `+trigger(table, op)+` BEFORE `+op+` ON `+table+
		` BEGIN SELECT RAISE(ABORT, '`+table+` refused by the test'); END`)
}

// Allow drops Refuse's trigger.
func (d *DB) Allow(t testing.TB, table, op string) {
	t.Helper()
	d.Exec(t, `DROP TRIGGER `+trigger(table, op))
}

func trigger(table, op string) string { return table + "_" + strings.ToLower(op) + "_refused" }
