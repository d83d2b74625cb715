package httpserver

import (
	"crypto/sha256"
	"crypto/subtle"
)

// TokenMatches says whether got is the token want, comparing them in
// constant time as SHA-256 sums, so that not even the token's length leaks.
// An empty want matches nothing.
func TokenMatches(want, got string) bool {
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return want != "" && subtle.ConstantTimeCompare(w[:], g[:]) == 1
}
