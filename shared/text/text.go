// Package text checks the strings clients send before they are stored:
// PostgreSQL's text and jsonb cannot hold NUL ("\u0000" in JSON) or invalid
// UTF-8, and a field without a length limit is an unbounded row. The domain
// and the ports use it so that such input is a 400 naming the field, never
// an error from the INSERT.
package text

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Problem says what keeps s from being stored as a field of at most
// maxChars characters, or "" if nothing does. Control characters (NUL, the
// other C0 and C1 codes, DEL) are refused as well: no identifier, name or
// reason needs them, and NUL is what jsonb refuses.
func Problem(s string, maxChars int) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("must not contain control characters such as %U", r)
		}
		n++
	}
	if n > maxChars {
		return fmt.Sprintf("is longer than %d characters", maxChars)
	}
	return ""
}
