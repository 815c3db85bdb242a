package call

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS syncs the file system that holds the open directory d: syncfs(2).
func syncFS(d *os.File) error {
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: d.Name(), Err: err}
	}
	return nil
}

// fsID identifies the file system holding the open directory d (false when
// it cannot tell).
func fsID(d *os.File) (uint64, bool) {
	var st unix.Stat_t
	if unix.Fstat(int(d.Fd()), &st) != nil {
		return 0, false
	}
	return uint64(st.Dev), true
}
