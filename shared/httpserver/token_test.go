package httpserver

import "testing"

func TestTokenMatches(t *testing.T) {
	for _, c := range []struct {
		want, got string
		match     bool
	}{
		{"s3cret", "s3cret", true},
		{"s3cret", "s3cre", false},
		{"s3cret", "s3cret ", false},
		{"s3cret", "", false},
		{"", "", false}, // no token configured: nothing matches
	} {
		if got := TokenMatches(c.want, c.got); got != c.match {
			t.Errorf("TokenMatches(%q, %q) = %v, want %v", c.want, c.got, got, c.match)
		}
	}
}
