package text_test

import (
	"testing"

	"github.com/es-outbox/reference/shared/text"
)

func TestProblem(t *testing.T) {
	for _, c := range []struct {
		s    string
		max  int
		want string
	}{
		{"book", 64, ""},
		{"caf\u00e9 \u2603", 64, ""},
		{"\u00e9\u00e9\u00e9", 3, ""}, // characters, not bytes
		{"\u00e9\u00e9\u00e9x", 3, "is longer than 3 characters"},
		{"a\x00b", 64, "must not contain control characters such as U+0000"},
		{"tab\tin", 64, "must not contain control characters such as U+0009"},
		{"c1\u0085", 64, "must not contain control characters such as U+0085"},
		{"bad\xffutf8", 64, "is not valid UTF-8"},
	} {
		if got := text.Problem(c.s, c.max); got != c.want {
			t.Errorf("Problem(%q, %d) = %q, want %q", c.s, c.max, got, c.want)
		}
	}
}
