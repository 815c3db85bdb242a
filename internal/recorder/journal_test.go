package recorder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hiddenFiles lists the dot files under root other than the journal.
func hiddenFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") && !strings.HasSuffix(d.Name(), ".journal") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// With a journal, a recording creates no marker file; a crash (the Writer
// abandoned, the journal not closed) leaves it listed, and the next run's
// Recover repairs it exactly as the markers' Recover does; a finished
// recording is left alone.
func TestJournalCrashRecovered(t *testing.T) {
	root := t.TempDir()
	j, err := OpenJournal(root, "n1")
	if err != nil {
		t.Fatal(err)
	}
	pcm := ramp(8000*3, 5)
	crashed := filepath.Join(root, "a", "b", "crashed.wav")
	w, err := Create(crashed, Format{Name: "wav"}, Fail, WithJournal(j), WithHeaderAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(root, "done.wav")
	wd, err := Create(done, Format{Name: "wav"}, Fail, WithJournal(j), WithHeaderAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	if m := hiddenFiles(t, root); len(m) != 0 {
		t.Fatalf("marker files while recording with a journal: %v", m)
	}
	writeFrames(t, w, pcm[:8000*2+800]) // 2 s written, 0.1 s buffered
	writeFrames(t, wd, pcm[:1600])
	if err := wd.Close(); err != nil {
		t.Fatal(err)
	}
	// Another node's journal in the same (shared) directory.
	other, err := OpenJournal(root, "n2")
	if err != nil {
		t.Fatal(err)
	}
	ow, err := Create(filepath.Join(root, "theirs.wav"), Format{Name: "wav"}, Fail, WithJournal(other), WithHeaderAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, ow, pcm[:8000*2])
	// The process "crashes": nothing is closed. The markers' Recover finds
	// nothing to do.
	if recs, err := Recover(root); err != nil || len(recs) != 0 {
		t.Fatalf("Recover without markers: %+v %v", recs, err)
	}
	if !InJournal(root, "n1", crashed) || InJournal(root, "n1", done) || InJournal(root, "n2", crashed) {
		t.Fatal("InJournal does not follow the journals")
	}
	j2, err := OpenJournal(root, "n1")
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	recs, err := j2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("recovered %+v", recs)
	}
	// 2.1 s were written: the file has all but at most the buffer (one
	// second, README's crash bound; the periodic writes end on pages of
	// the file, writeFull), and the recovered entry says what it has.
	r := recs[0]
	_, got := readWAV(t, crashed)
	if len(got) < 8000*2+800-8000 {
		t.Fatalf("recovered %d samples of %d written: more than the 1 s buffer lost", len(got), 8000*2+800)
	}
	if r.Path != crashed || r.Name != "a/b/crashed" || r.Format.Name != "wav" ||
		r.Duration != time.Duration(len(got))*time.Second/8000 || r.Bytes != int64(44+2*len(got)) {
		t.Errorf("recovered %+v, file has %d samples", r, len(got))
	}
	equalPCM(t, "crashed", got, pcm[:len(got)])
	if !IsRecovered(crashed) || IsRecovered(done) {
		t.Error("recovered markers")
	}
	if !InJournal(root, "n2", filepath.Join(root, "theirs.wav")) {
		t.Error("another node's journal was touched")
	}
	// Idempotent: the journal no longer lists it.
	j2.Close()
	j3, err := OpenJournal(root, "n1")
	if err != nil {
		t.Fatal(err)
	}
	defer j3.Close()
	if recs, err := j3.Recover(); err != nil || len(recs) != 0 {
		t.Errorf("second Recover: %+v %v", recs, err)
	}
	ow.(*writer).be.(*wavWriter).out.f.Close()
	w.(*writer).be.(*wavWriter).out.f.Close()
}

// The journal is rewritten with only the open recordings when it grows:
// a recording open across many compactions is still recovered, and the
// file stays small.
func TestJournalCompacts(t *testing.T) {
	root := t.TempDir()
	j, err := OpenJournal(root, "n1")
	if err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(root, "long.sln")
	lw, err := Create(long, Format{Name: "sln"}, Fail, WithJournal(j))
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, lw, ramp(8000, 3))
	name := strings.Repeat("x", 100)
	for i := range 6000 {
		w, err := Create(filepath.Join(root, "many", name+strings.Repeat("y", i%7)+".sln"), Format{Name: "sln"}, Overwrite, WithJournal(j))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(JournalPath(root, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > journalCompactAt {
		t.Fatalf("journal of %d bytes after 6000 recordings", fi.Size())
	}
	j2, err := OpenJournal(root, "n1")
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	recs, err := j2.Recover()
	if err != nil || len(recs) != 1 || recs[0].Path != long || recs[0].Bytes != 16000 {
		t.Fatalf("after compactions: %+v %v", recs, err)
	}
	lw.(*writer).be.(*rawWriter).out.f.Close()
}

// A node that takes over a lost node's recording says so in the lost
// node's journal; the lost node, back, leaves the file alone. A file gone
// meanwhile is forgotten.
func TestJournalEndedByAnotherNode(t *testing.T) {
	root := t.TempDir()
	j, err := OpenJournal(root, "lost")
	if err != nil {
		t.Fatal(err)
	}
	taken := filepath.Join(root, "taken.wav")
	gone := filepath.Join(root, "gone.wav")
	for _, p := range []string{taken, gone} {
		w, err := Create(p, Format{Name: "wav"}, Fail, WithJournal(j))
		if err != nil {
			t.Fatal(err)
		}
		writeFrames(t, w, ramp(8000*2, 1))
		w.(*writer).be.(*wavWriter).out.f.Close()
	}
	if err := EndInJournal(root, "lost", taken); err != nil {
		t.Fatal(err)
	}
	if InJournal(root, "lost", taken) || !InJournal(root, "lost", gone) {
		t.Fatal("EndInJournal")
	}
	os.Remove(gone)
	j2, err := OpenJournal(root, "lost")
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if recs, err := j2.Recover(); err != nil || len(recs) != 0 {
		t.Fatalf("recovered %+v %v", recs, err)
	}
	if IsRecovered(taken) {
		t.Error("the file taken over was recovered by its old node")
	}
	if InJournal(root, "lost", gone) {
		t.Error("a gone file stays listed")
	}
}
