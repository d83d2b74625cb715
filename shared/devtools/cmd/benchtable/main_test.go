package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// testdata/go-test-bench.txt is the raw output of a `task bench`
// run (four packages, -count 3, a benchmark's log lines in between) whose
// second latency run was cut off.
func TestTableFromGoTestOutput(t *testing.T) {
	f, err := os.Open("testdata/go-test-bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	benchmarks, cpu, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if cpu != "AMD EPYC" {
		t.Errorf("cpu = %q", cpu)
	}
	var runs []string
	for _, b := range benchmarks {
		runs = append(runs, fmt.Sprint(b.name, ":", len(b.runs)))
	}
	want := "Backlog:3 Latency:1 PlaceOrder:3 PlaceToPaid:3 ForwarderMemory:3 Replay/order_summaries:3 Replay/order_daily_stats:3 ProjectorBacklog:3"
	if got := strings.Join(runs, " "); got != want {
		t.Errorf("benchmarks and runs\n%s, want\n%s", got, want)
	}
	var out bytes.Buffer
	write(&out, "header", rows(benchmarks))
	for _, row := range []string{
		"| Forwarder draining a 200k backlog vs raw batch relay, events/s | 15,495 | 51,189 | 0.30 | 0.38, 0.30, 0.30 |",
		"| POST /v1/orders, 32 clients, vs raw pgx inserts, req/s | 477 | 708 | 0.65 | 0.65, 0.79, 0.52 |",
		"| Commit-to-Kafka at 2,000 events/s, forwarder vs raw relay, p99_ms | 68.2 | 285 | 0.24 | 0.24 |",
		"| `order forward` draining a backlog, peak_rss_200k_MiB | 32.9 |  |  | 33.0, 32.9, 32.7 |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table lacks the row\n%s\nin\n%s", row, out.String())
		}
	}
}

// The median of the per-run ratios is not the ratio of the medians.
func TestMedianOfRatios(t *testing.T) {
	benchmarks, _, err := parse(strings.NewReader(`
BenchmarkX-2   	       1	  5 ns/op	  10 baseline_events/s	  3 events/s	 7 p50_ms
BenchmarkX-2   	       1	  5 ns/op	  30 baseline_events/s	  6 events/s	 9 p50_ms
BenchmarkX-2   	       1	  5 ns/op	  20 baseline_events/s	 16 events/s	 8 p50_ms
`))
	if err != nil {
		t.Fatal(err)
	}
	r := rows(benchmarks)
	if len(r) != 2 {
		t.Fatalf("rows %+v, want events/s and p50_ms", r)
	}
	if e := r[0]; e.unit != "events/s" || e.project != 6 || e.baseline != 20 || e.ratio != 0.3 || !e.hasBaseline {
		t.Errorf("events/s row %+v, want medians 6 and 20, ratio 0.3 (of 0.3, 0.2, 0.8)", e)
	}
	if p := r[1]; p.unit != "p50_ms" || p.project != 8 || p.hasBaseline {
		t.Errorf("p50_ms row %+v, want median 8 without baseline", p)
	}
}

// The peer table: relays as columns, per-run ratios of the forwarder to
// Debezium and to the raw relay, a metric missing in a run said so.
func TestPeersTable(t *testing.T) {
	input := `peers: Go: 1.26.11
peers: Kafka: 4.3.1 (3 nodes, KRaft)
BenchmarkPeers-2   	       1	  5 ns/op	 100 forwarder.drain_200k_events/s	 10 debezium.drain_200k_events/s	 200 raw.drain_200k_events/s	 3 watermill.behind_2k_events
peers: Go: 1.26.11
BenchmarkPeers-2   	       1	  5 ns/op	 300 forwarder.drain_200k_events/s	 50 debezium.drain_200k_events/s	 400 raw.drain_200k_events/s
BenchmarkPeers-2   	       1	  5 ns/op	 200 forwarder.drain_200k_events/s	 40 debezium.drain_200k_events/s	 250 raw.drain_200k_events/s
`
	benchmarks, _, err := parse(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	env, err := peerEnvironment(strings.NewReader(input))
	if err != nil || fmt.Sprint(env) != "[[Go 1.26.11] [Kafka 4.3.1 (3 nodes, KRaft)]]" {
		t.Errorf("environment %v, %v", env, err)
	}
	var out bytes.Buffer
	writePeers(&out, "header", 3, peerRows(benchmarks))
	for _, row := range []string{
		// ratios 10, 6, 5 and 0.5, 0.75, 0.8: medians of the per-run ratios.
		"| Drain of a 200k backlog, events/s | 200 (100–300) | — | 40.0 (10.0–50.0) | — | 250 (200–400) | — | 6.00 (5.00–10.00) | 0.75 (0.50–0.80) |",
		"| At 2,000 events/s: fell behind, events not in Kafka 10 s after the last commit | — | — | — | 3.00, 1 of 3 runs | — | — | — | — |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table lacks the row\n%s\nin\n%s", row, out.String())
		}
	}
}
