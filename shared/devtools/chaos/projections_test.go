package chaos

import (
	"slices"
	"testing"
)

// Rows are compared as multisets: order does not matter (PostgreSQL's
// collation is not Go's byte order), repeats do.
func TestDifferenceIgnoresOrderAndCountsRepeats(t *testing.T) {
	live := []string{"(b,1)", "(a,2)", "(a,2)"}
	replayed := []string{"(a,2)", "(c,3)", "(b,1)"}
	if got := difference(live, replayed); !slices.Equal(got, []string{"(a,2)"}) {
		t.Errorf("live rows not in the replay: %v, want the second (a,2)", got)
	}
	if got := difference(replayed, live); !slices.Equal(got, []string{"(c,3)"}) {
		t.Errorf("replayed rows not live: %v, want (c,3)", got)
	}
}
