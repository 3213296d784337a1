package incidents

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with Argon2id (RFC 9106) at OWASP's recommended
// parameters and stored in the PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<key, base64>
//
// Verification reads the parameters from the stored string, so they can be
// raised later without invalidating existing hashes; absurd stored parameters
// (a tampered database asking for gigabytes) are refused.

// Argon2id parameters of new hashes.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16

	// Bounds on parameters read back from a stored hash.
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonThreads   = 16
	maxArgonKeyLen    = 128
	maxArgonSaltLen   = 64
)

// Password bounds.
const (
	// MinPasswordRunes is the shortest password accepted.
	MinPasswordRunes = 12
	// MaxPasswordBytes bounds a password (hashing cost stays bounded).
	MaxPasswordBytes = 1024
)

var b64 = base64.RawStdEncoding

// CheckPassword reports what is wrong with a new password.
func CheckPassword(pw string) error {
	if !utf8.ValidString(pw) || len(pw) > MaxPasswordBytes || utf8.RuneCountInString(pw) < MinPasswordRunes {
		return fmt.Errorf("%w: a password is %d or more characters of UTF-8, at most %d bytes", ErrInvalid, MinPasswordRunes, MaxPasswordBytes)
	}
	return nil
}

// HashPassword returns the Argon2id PHC string of pw with a fresh random salt.
func HashPassword(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// argonParams is a parsed PHC string.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parsePasswordHash parses and bounds an Argon2id PHC string.
func parsePasswordHash(s string) (argonParams, error) {
	var p argonParams
	bad := func(what string) (argonParams, error) {
		return argonParams{}, fmt.Errorf("%w: stored password hash: %s", ErrInvalid, what)
	}
	if len(s) > 512 {
		return bad("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("not an argon2id PHC string")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + parts[2])
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return bad("malformed parameters")
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return bad("malformed parameter " + k)
		}
		switch k {
		case "m":
			if n > maxArgonMemoryKiB {
				return bad("memory parameter too large")
			}
			p.memory = uint32(n)
		case "t":
			if n > maxArgonTime {
				return bad("time parameter too large")
			}
			p.time = uint32(n)
		case "p":
			if n > maxArgonThreads {
				return bad("parallelism parameter too large")
			}
			p.threads = uint8(n)
		default:
			return bad("unknown parameter " + k)
		}
	}
	if p.memory == 0 || p.time == 0 || p.threads == 0 || p.memory < 8*uint32(p.threads) {
		return bad("missing or inconsistent parameters")
	}
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < 8 || len(p.salt) > maxArgonSaltLen {
		return bad("malformed salt")
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > maxArgonKeyLen {
		return bad("malformed key")
	}
	return p, nil
}

// VerifyPassword reports whether pw matches the stored PHC string, comparing in
// constant time.
func VerifyPassword(stored, pw string) (bool, error) {
	p, err := parsePasswordHash(stored)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPasswordBytes {
		return false, nil
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// dummyHash is verified against when a user does not exist, so a login for an
// unknown name costs as much as one for a known name.
var dummyHash = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
	b64.EncodeToString(make([]byte, argonSaltLen)), b64.EncodeToString(make([]byte, argonKeyLen)))
