package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
)

// persistentKey reads the hex key at path, or makes a random 256-bit one
// there (mode 0600) the first time.
func persistentKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	k := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process made it meanwhile
		return persistentKey(path)
	}
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return k, f.Close()
}
