package poisoncli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
)

// printList prints entries as a table, one line each.
func printList(w io.Writer, entries []poison.Entry, status poison.Status) error {
	if len(entries) == 0 {
		switch status {
		case "":
			fmt.Fprintln(w, "The poison queue is empty.")
		case poison.StatusNew:
			fmt.Fprintln(w, "No new entries in the poison queue (--status all lists handled ones too).")
		default:
			fmt.Fprintf(w, "No %s entries in the poison queue.\n", status)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPOISONED AT\tSTATUS\tFROM\tHANDLER\tEVENT TYPE\tKEY\tREASON\tPAYLOAD")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, timestamp(e.PoisonedAt), e.Status,
			orDash(e.Origin.String()), orDash(e.Handler), orDash(e.EventType), orDash(excerpt(e.Key, 40)),
			excerpt(e.Reason, 80), excerpt(string(e.Payload), 40))
	}
	return tw.Flush()
}

// printEntry prints one entry whole.
func printEntry(w io.Writer, e poison.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, field := range [][2]string{
		{"ID", e.ID},
		{"Status", statusLine(e)},
		{"Poisoned at", timestamp(e.PoisonedAt)},
		{"Reason", e.Reason},
		{"From", orDash(e.Origin.String())},
		{"Key", orDash(e.Key)},
		{"Handler", orDash(e.Handler)},
		{"Event type", orDash(e.EventType)},
		{"Message id", orDash(e.MessageID)},
		{"Poison record", e.Record.String()},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", field[0], field[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nMetadata")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, e.Metadata[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nPayload (%d bytes)\n%s\n", len(e.Payload), prettyPayload(e.Payload))
	return nil
}

// printOutcomes prints what a requeue or discard did, one line per entry.
func printOutcomes(w io.Writer, outcomes []poisonapp.Outcome) {
	for _, o := range outcomes {
		e := o.Entry
		switch o.Result {
		case poisonapp.Requeued:
			fmt.Fprintf(w, "requeued %s to %s\n", e.ID, e.RequeuedTo)
		case poisonapp.WouldRequeue:
			fmt.Fprintf(w, "would requeue %s to %s with key %q\n", e.ID, requeueTarget(e.Origin), e.Key)
		case poisonapp.Discarded:
			fmt.Fprintf(w, "discarded %s\n", e.ID)
		case poisonapp.Unchanged:
			fmt.Fprintf(w, "%s is %s; nothing done\n", e.ID, statusLine(e))
		}
	}
}

// statusLine says what became of an entry: "new", or by whom, when, and
// where to or why.
func statusLine(e poison.Entry) string {
	switch e.Status {
	case poison.StatusRequeued:
		return fmt.Sprintf("requeued to %s by %s at %s", e.RequeuedTo, e.ChangedBy, timestamp(e.ChangedAt))
	case poison.StatusDiscarded:
		return fmt.Sprintf("discarded by %s at %s: %s", e.ChangedBy, timestamp(e.ChangedAt), e.ChangeReason)
	}
	return string(e.Status)
}

// prettyPayload indents a JSON payload; anything else is printed as it is.
func prettyPayload(payload []byte) string {
	var buf bytes.Buffer
	if json.Valid(payload) && json.Indent(&buf, payload, "", "  ") == nil {
		return buf.String()
	}
	return strings.ToValidUTF8(string(payload), "\uFFFD")
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// excerpt is s on one line, cut to n characters.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// requeueTarget is where a requeue publishes: the origin's topic and
// partition ("order.events partition 2"), or the topic alone if the
// partition is unknown (the key decides).
func requeueTarget(origin poison.Position) string {
	if origin.Partition < 0 {
		return origin.Topic
	}
	return fmt.Sprintf("%s partition %d", origin.Topic, origin.Partition)
}
