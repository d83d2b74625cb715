package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The peer benchmarks (BenchmarkPeers in shared/outbox) report every figure
// as "RELAY.METRIC" and print the versions of what they ran as lines
// "peers: NAME: VERSION". With --peers, benchtable prints one table with the
// relays as columns and this project's forwarder's ratios to Debezium and to
// the raw relay.

// peerRelays are the columns, in order, with their headings.
var peerRelays = []struct{ name, heading string }{
	{"forwarder", "This forwarder"},
	{"forwarder100", "This forwarder, batch 100"},
	{"debezium", "Debezium outbox router"},
	{"watermill", "Watermill stock forwarder"},
	{"raw", "Raw relay"},
	{"kafka", "Kafka alone, no relay (produce to readable)"},
}

// peerMetrics are the rows, in order, with their labels; a metric not
// listed comes last, labelled by its name.
var peerMetrics = []struct{ name, label string }{
	{"drain_200k_events/s", "Drain of a 200k backlog, events/s"},
	{"drain_200k_cut_off_after_events", "… cut off after 60 s, events relayed by then"},
	{"drain_1M_events/s", "Drain of a 1M backlog (the two fastest), events/s"},
	{"drain_1M_cut_off_after_events", "… cut off after 60 s, events relayed by then"},
	{"drain_cpu_ms/1k_events", "CPU of the relay's process per 1,000 events drained, ms"},
	{"peak_rss_MiB", "Peak RSS of the relay's process (200k drain), MiB"},
	{"idle_cpu_ms/s", "Idle: CPU of the relay's process, ms/s"},
	{"idle_tx/s", "Idle: transactions on the database, /s"},
	{"p50_2k_ms", "Commit-to-Kafka at 2,000 events/s, p50 ms"},
	{"p99_2k_ms", "Commit-to-Kafka at 2,000 events/s, p99 ms"},
	{"max_2k_ms", "Commit-to-Kafka at 2,000 events/s, max ms"},
	{"behind_2k_events", "At 2,000 events/s: fell behind, events not in Kafka 10 s after the last commit"},
	{"append_rate_2k_events/s", "At 2,000 events/s: rate the writers achieved, events/s"},
	{"p50_10k_ms", "Commit-to-Kafka at 10,000 events/s, p50 ms"},
	{"p99_10k_ms", "Commit-to-Kafka at 10,000 events/s, p99 ms"},
	{"max_10k_ms", "Commit-to-Kafka at 10,000 events/s, max ms"},
	{"behind_10k_events", "At 10,000 events/s: fell behind, events not in Kafka 10 s after the last commit"},
	{"append_rate_10k_events/s", "At 10,000 events/s: rate the writers achieved, events/s"},
	{"held_tx_max_ms", "Write transaction held 3 s in another database: max commit-to-Kafka, ms"},
	{"held_tx_missing_events", "Write transaction held 3 s in another database: events never relayed"},
}

// peerEnvironment reads the "peers: NAME: VERSION" lines, in order.
func peerEnvironment(r io.Reader) ([][2]string, error) {
	var env [][2]string
	s := bufio.NewScanner(r)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "peers: "); ok {
			name, version, ok := strings.Cut(rest, ": ")
			seen := slices.ContainsFunc(env, func(e [2]string) bool { return e[0] == name })
			if ok && !seen { // every run prints them
				env = append(env, [2]string{name, strings.TrimSpace(version)})
			}
		}
	}
	return env, s.Err()
}

// peerRow is one metric: per relay the values of the runs that have it,
// and the per-run ratios of the forwarder to Debezium and to the raw relay.
type peerRow struct {
	label             string
	values            map[string][]float64
	toDebezium, toRaw []float64
}

func peerRows(benchmarks []*benchmark) []peerRow {
	var runs []map[string]float64
	for _, b := range benchmarks {
		if b.name == "Peers" {
			runs = b.runs
		}
	}
	var names []string
	for _, run := range runs {
		for unit := range run {
			if _, metric, ok := strings.Cut(unit, "."); ok && !slices.Contains(names, metric) {
				names = append(names, metric)
			}
		}
	}
	order := func(metric string) int {
		i := slices.IndexFunc(peerMetrics, func(m struct{ name, label string }) bool { return m.name == metric })
		if i < 0 {
			return len(peerMetrics)
		}
		return i
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := order(a) - order(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var out []peerRow
	for _, metric := range names {
		r := peerRow{label: metric, values: map[string][]float64{}}
		if i := order(metric); i < len(peerMetrics) {
			r.label = peerMetrics[i].label
		}
		for _, run := range runs {
			for _, relay := range peerRelays {
				if v, ok := run[relay.name+"."+metric]; ok {
					r.values[relay.name] = append(r.values[relay.name], v)
				}
			}
			fwd, ok := run["forwarder."+metric]
			if dbz, ok2 := run["debezium."+metric]; ok && ok2 && dbz != 0 {
				r.toDebezium = append(r.toDebezium, fwd/dbz)
			}
			if raw, ok2 := run["raw."+metric]; ok && ok2 && raw != 0 {
				r.toRaw = append(r.toRaw, fwd/raw)
			}
		}
		out = append(out, r)
	}
	return out
}

func writePeers(w io.Writer, header string, runs int, rows []peerRow) {
	fmt.Fprintf(w, "%s\n\n", header)
	fmt.Fprint(w, "| Metric |")
	for _, relay := range peerRelays {
		fmt.Fprintf(w, " %s |", relay.heading)
	}
	fmt.Fprintln(w, " Forwarder ÷ Debezium | Forwarder ÷ raw |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("---:|", len(peerRelays)+2))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |", r.label)
		for _, relay := range peerRelays {
			fmt.Fprintf(w, " %s |", spread(r.values[relay.name], runs, number))
		}
		ratio := func(v float64) string { return fmt.Sprintf("%.2f", v) }
		fmt.Fprintf(w, " %s | %s |\n", spread(r.toDebezium, runs, ratio), spread(r.toRaw, runs, ratio))
	}
}

// spread prints the median of values and, for more than one, their range;
// "—" for none, and how many runs had a value when not all did.
func spread(values []float64, runs int, format func(float64) string) string {
	if len(values) == 0 {
		return "—"
	}
	s := format(median(values))
	if len(values) > 1 {
		s += fmt.Sprintf(" (%s–%s)", format(slices.Min(values)), format(slices.Max(values)))
	}
	if len(values) < runs {
		s += fmt.Sprintf(", %d of %d runs", len(values), runs)
	}
	return s
}
