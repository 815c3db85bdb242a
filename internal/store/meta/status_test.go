package meta

import "testing"

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{StatusInProgress: "in-progress", StatusCompleted: "completed", StatusFailed: "failed", StatusRecovered: "recovered", StatusDeleted: "deleted"} {
		if s.String() != want {
			t.Errorf("%q.String() = %q", want, s.String())
		}
	}
}
