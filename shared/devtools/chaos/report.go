package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: what was done to the system and what the
// checker found.
type Report struct {
	Accepted, Unanswered, Cancelled, Stored int
	Faults                                  map[string]int
	ControllerErrors                        []string
	SelfRestarts                            int
	// Quiet says every order settled within the timeout; Quiesce is the
	// time from the end of the last fault to the check (or the timeout).
	Quiet   bool
	Quiesce time.Duration
	violations
}

// OK reports whether the run found nothing wrong.
func (r *Report) OK() bool {
	return r.Quiet && r.total() == 0 && len(r.ControllerErrors) == 0
}

// Problems lists what the checker found, for a failure message.
func (r *Report) Problems() []string {
	problems := append([]string{}, r.ControllerErrors...)
	if !r.Quiet {
		problems = append(problems, "the system did not settle within the quiesce timeout")
	}
	return append(problems, r.details...)
}

// Print writes the table of figures.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, value any) { fmt.Fprintf(tw, "%s\t%v\n", name, value) }
	row("orders accepted (201)", r.Accepted)
	row("orders unanswered (every retry failed)", r.Unanswered)
	row("orders stored", r.Stored)
	row("cancels accepted", r.Cancelled)
	kinds := make([]string, 0, len(r.Faults))
	total := 0
	for kind, n := range r.Faults {
		kinds = append(kinds, kind)
		total += n
	}
	sort.Strings(kinds)
	row("faults injected", total)
	for _, kind := range kinds {
		row("  "+kind, r.Faults[kind])
	}
	row("restarts after a process gave up", r.SelfRestarts)
	row("events lost", r.lost)
	row("events skipped (not applied)", r.skipped)
	row("double charges", r.doubleCharges)
	row("double refunds", r.doubleRefunds)
	row("order violations", r.outOfOrder)
	row("wrong final status", r.wrongStatus)
	row("unexpected poison", r.poisoned)
	row("projection rows unlike a fresh replay", r.projections)
	quiesce := r.Quiesce.Round(100 * time.Millisecond).String()
	if !r.Quiet {
		quiesce = "did not settle within " + quiesce
	}
	row("time to quiesce after the last fault", quiesce)
	tw.Flush()
	if problems := r.Problems(); len(problems) > 0 {
		fmt.Fprintf(w, "\nproblems:\n  %s\n", strings.Join(problems, "\n  "))
	}
}
