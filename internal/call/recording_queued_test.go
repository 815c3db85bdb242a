package call

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// queuedBridgeRecording is a bridge recording as Bridge.Record makes it,
// registered and still queued: its start has not run yet. The manager has
// a real catalog (SQLite) and a real recordings directory.
func queuedBridgeRecording(t *testing.T, name string) (*LiveRecording, meta.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root := filepath.Join(dir, "recording")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{RecordingsDir: root, Bus: event.NewBus("test")})
	m.SetCatalog(&catalog.Service{Meta: st, Root: root})
	b, err := m.createBridge("b1", "mixing", "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := recorder.Lookup("wav")
	if err != nil {
		t.Fatal(err)
	}
	base, err := recorder.ResolveName(root, name)
	if err != nil {
		t.Fatal(err)
	}
	r := &LiveRecording{m: m, br: b, name: name, format: f, target: "bridge:b1",
		path: base + "." + f.Ext, state: RecQueued, done: make(chan struct{})}
	m.recMu.Lock()
	m.live[name] = r
	m.recMu.Unlock()
	return r, st
}

// TestStopWhileQueued: a stop (or cancel) that arrives before the queued
// recording's start has run leaves neither a catalog row nor a file, and
// the recording ends canceled, as Asterisk does. It used to leave a
// "failed" row (the catalog found no file) and, once the start ran, an
// orphan file.
func TestStopWhileQueued(t *testing.T) {
	for _, op := range []string{"stop", "cancel"} {
		t.Run(op, func(t *testing.T) {
			r, st := queuedBridgeRecording(t, "quick")
			if op == "stop" {
				r.Stop()
			} else {
				r.Cancel()
			}
			r.start(recorder.Fail) // the start goroutine, running late
			<-r.Done()
			if j := r.JSON(); j.State != RecCanceled {
				t.Errorf("state %q, want %q", j.State, RecCanceled)
			}
			if _, err := os.Stat(r.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file %s: %v, want none", r.path, err)
			}
			if row, err := st.RecordingByName(context.Background(), "quick"); !errors.Is(err, meta.ErrNotFound) {
				t.Errorf("catalog row %+v (%v), want none", row, err)
			}
			if _, err := r.m.liveRecording("quick"); err == nil {
				t.Error("still listed as live")
			}
		})
	}
}

// TestCancelWhileQueuedKeepsEarlierTake: canceling a queued overwrite
// must not delete the file the earlier recording of that name left.
func TestCancelWhileQueuedKeepsEarlierTake(t *testing.T) {
	r, _ := queuedBridgeRecording(t, "take")
	if err := os.WriteFile(r.path, []byte("earlier take"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Cancel()
	r.start(recorder.Overwrite)
	if b, err := os.ReadFile(r.path); err != nil || string(b) != "earlier take" {
		t.Errorf("earlier take: %q %v", b, err)
	}
}

// TestStopWhileQueuedAfterItsFirstRow: a row-first recording (the command
// API's Record) whose first row is written and which is stopped (its call
// hung up) before its start has run ends canceled, with no file, and
// keeps its row, written final: absent (nothing recorded, the detail
// saying it ended before it began), with its end reason and no length,
// so that the notification its starter was promised goes with it. Before,
// the row stayed in progress for good, and then it was deleted. Stopped
// before its first row, none is written and firstRow answers that the
// channel is gone (its starter is promised nothing).
func TestStopWhileQueuedAfterItsFirstRow(t *testing.T) {
	for _, when := range []string{"after the row", "before the row"} {
		t.Run(when, func(t *testing.T) {
			r, st := queuedBridgeRecording(t, "rowfirst")
			r.opts.rowFirst = true
			if when == "before the row" {
				r.Stop()
				if err := r.firstRow(); !errors.Is(err, ErrNotFound) {
					t.Fatalf("firstRow of a recording stopped before it: %v, want %v", err, ErrNotFound)
				}
			} else {
				if err := r.firstRow(); err != nil {
					t.Fatal(err)
				}
				if row, err := st.RecordingByName(context.Background(), "rowfirst"); err != nil || row.Status != meta.StatusInProgress {
					t.Fatalf("first row %+v (%v), want in progress", row, err)
				}
				r.Stop()
			}
			r.start(recorder.Fail) // the start goroutine, running late
			<-r.Done()
			if j := r.JSON(); j.State != RecCanceled {
				t.Errorf("state %q, want %q", j.State, RecCanceled)
			}
			row, err := st.RecordingByName(context.Background(), "rowfirst")
			if when == "before the row" {
				if !errors.Is(err, meta.ErrNotFound) {
					t.Errorf("catalog row %+v (%v), want none", row, err)
				}
			} else if err != nil || row.Status != meta.StatusAbsent || row.StatusDetail != catalog.DetailEndedBeforeStart ||
				row.EndReason != EndStopped || row.Duration != 0 || row.Size != 0 {
				t.Errorf("catalog row %+v (%v), want it final: absent (%q), reason %s, nothing recorded", row, err,
					catalog.DetailEndedBeforeStart, EndStopped)
			}
			if _, err := os.Stat(r.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file %s: %v, want none", r.path, err)
			}
		})
	}
}
