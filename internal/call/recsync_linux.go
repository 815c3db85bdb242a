package call

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS syncs the file system that holds dir: syncfs(2) on the directory.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// fsID identifies the file system holding dir (false when it cannot tell).
func fsID(dir string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return 0, false
	}
	return uint64(st.Dev), true
}
