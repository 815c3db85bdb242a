package meta

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Auth tokens at rest. An account's token is needed in two ways: to check
// HTTP Basic credentials (a hash is enough) and as the HMAC key of
// X-Twilio-Signature on status callbacks (the token itself). The catalog
// keeps token_hash (SHA-256: the tokens are 128 random bits, so a fast
// unsalted hash cannot be searched) and token_enc (AES-256-GCM under the
// token key, bound to the account's Sid); the token key is not in the
// database, so a copy of the database file or of the rows gives no token.

// ErrTokenKey: the token key does not open the tokens already in the
// catalog (another key sealed them: nodes sharing a catalog need one
// catalog.token_key).
var ErrTokenKey = errors.New("meta: the token key does not open the stored auth tokens (nodes sharing a catalog need the same catalog.token_key; a single node keeps it in <data_dir>/token.key)")

// Option configures OpenSQLite and OpenPostgres.
type Option func(*options)

type options struct {
	tokenKey     []byte
	tokenKeyFile string
}

// WithTokenKey seals the accounts' auth tokens with a key derived from
// key (any text: a configured secret, hex or not). Nodes that share a
// catalog must be given the same key.
func WithTokenKey(key string) Option {
	return func(o *options) { o.tokenKey = []byte(key) }
}

// WithTokenKeyFile takes the token key from the file at path, creating it
// (owner-only, 32 random bytes in hex) when it does not exist. OpenSQLite
// uses token.key beside the database when no key option is given;
// OpenPostgres needs one of the two options.
func WithTokenKeyFile(path string) Option {
	return func(o *options) { o.tokenKeyFile = path }
}

// PersistentKey returns the key kept in the file at path, making one
// (32 random bytes, hex, mode 0600) if the file does not exist or is empty.
func PersistentKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	k := randomHex(32)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process made it meanwhile
		return PersistentKey(path)
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

// tokenKey resolves the options into the AEAD that seals tokens.
func (o options) aead() (cipher.AEAD, error) {
	key := o.tokenKey
	if key == nil && o.tokenKeyFile != "" {
		k, err := PersistentKey(o.tokenKeyFile)
		if err != nil {
			return nil, fmt.Errorf("token key: %w", err)
		}
		key = []byte(k)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: no token key (catalog.token_key)", ErrInvalid)
	}
	sum := sha256.Sum256(append([]byte("tapedeck auth token key v1\x00"), key...))
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

const sealPrefix = "v1:"

// hashToken is what token_hash holds.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// sealToken encrypts token for the account sid.
func (s *sqlStore) sealToken(sid, token string) string {
	nonce := make([]byte, s.tokens.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("meta: crypto/rand: " + err.Error())
	}
	return sealPrefix + base64.RawStdEncoding.EncodeToString(s.tokens.Seal(nonce, nonce, []byte(token), []byte(sid)))
}

// openToken decrypts a token_enc value of the account sid.
func (s *sqlStore) openToken(sid, enc string) (string, error) {
	b64, ok := strings.CutPrefix(enc, sealPrefix)
	if !ok {
		return "", fmt.Errorf("%w: account %s: unknown token format", ErrTokenKey, sid)
	}
	b, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(b) < s.tokens.NonceSize() {
		return "", fmt.Errorf("%w: account %s: malformed token", ErrTokenKey, sid)
	}
	n := s.tokens.NonceSize()
	plain, err := s.tokens.Open(nil, b[:n], b[n:], []byte(sid))
	if err != nil {
		return "", fmt.Errorf("%w: account %s", ErrTokenKey, sid)
	}
	return string(plain), nil
}

// tokenMatches compares a presented token with the stored hash in
// constant time.
func tokenMatches(token, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(hash)) == 1
}

// sealTokens runs when a store opens: accounts still holding a plaintext
// auth_token (made before migration 00011) get its hash and sealed form,
// and the plaintext is emptied; then one sealed token is opened, so that a
// wrong key is reported at once (ErrTokenKey) rather than at the first
// callback to sign.
func (s *sqlStore) sealTokens(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT sid, auth_token FROM accounts WHERE auth_token <> ''`)
	if err != nil {
		return s.mapErr(err, "tokens")
	}
	type plain struct{ sid, token string }
	var todo []plain
	for rows.Next() {
		var p plain
		if err := rows.Scan(&p.sid, &p.token); err != nil {
			rows.Close()
			return s.mapErr(err, "tokens")
		}
		todo = append(todo, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.mapErr(err, "tokens")
	}
	if len(todo) > 0 {
		if s.d.name == "sqlite" {
			// The emptied plaintext must not stay behind in the page's
			// free space, nor in the WAL.
			if _, err := s.w.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
				return s.mapErr(err, "tokens")
			}
			defer s.w.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = OFF`) //nolint:errcheck
		}
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return s.mapErr(err, "tokens")
		}
		for _, p := range todo {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE accounts SET auth_token = '', token_hash = $1, token_enc = $2 WHERE sid = $3 AND auth_token = $4`),
				hashToken(p.token), s.sealToken(p.sid, p.token), p.sid, p.token); err != nil {
				tx.Rollback()
				return s.mapErr(err, "seal tokens")
			}
		}
		if err := tx.Commit(); err != nil {
			return s.mapErr(err, "seal tokens")
		}
		if s.d.name == "sqlite" {
			if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				return s.mapErr(err, "tokens")
			}
		}
	}
	var sid, enc string
	err = s.w.QueryRowContext(ctx, `SELECT sid, token_enc FROM accounts WHERE token_enc <> '' ORDER BY created LIMIT 1`).Scan(&sid, &enc)
	if err == nil {
		_, err = s.openToken(sid, enc)
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return s.mapErr(err, "tokens")
}
