//go:build !linux

package call

import (
	"errors"
	"os"
)

// syncFS needs syncfs(2), which only Linux has: set
// recording.fsync_interval_seconds to 0 elsewhere.
func syncFS(d *os.File) error {
	return errors.New("syncing a file system needs Linux (syncfs); set recording.fsync_interval_seconds: 0")
}

func fsID(d *os.File) (uint64, bool) { return 0, false }
