// Command benchtable turns `go test -bench` output (any number of packages,
// -count N) read from stdin into one Markdown table: per metric the median
// of this project's figure, of the raw baseline's, and of the per-run ratios.
// A benchmark reports its figure as "<unit>" and the baseline's, measured in
// the same run, as "baseline_<unit>"; a unit without a baseline is a row
// without ratio.
//
//	go test -run '^$' -bench . -benchtime 1x -count 3 PACKAGES | go run ./shared/devtools/cmd/benchtable
//
// With --peers it prints the table of the peer benchmarks (BenchmarkPeers,
// `task bench-peers`) instead: the relays as columns (see peers.go).
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// labels describe the benchmarks (by name without "Benchmark" and the
// GOMAXPROCS suffix); a benchmark not listed is labelled by its name.
var labels = map[string]string{
	"Backlog":               "Forwarder draining a 200k backlog vs raw batch relay",
	"Latency":               "Commit-to-Kafka at 2,000 events/s, forwarder vs raw relay",
	"Idle":                  "Idle forwarder vs raw relay polling every 10 ms",
	"PlaceOrder":            "POST /v1/orders, 32 clients, vs raw pgx inserts",
	"PlaceToPaid":           "Place-to-paid at 200 orders/s, both services",
	"PlaceToPaidKnee":       "Place-to-paid knee at p99 <= 250 ms (commits/s vs the server's own)",
	"ForwarderMemory":       "`order forward` draining a backlog",
	"Replay/events=100000":  "`order replay --all` of 100k events vs keyset read and COPY",
	"Replay/events=1000000": "`order replay --all` of 1M events vs keyset read and COPY",
	"ProjectorBacklog":      "Live projector, 100k backlog, both projections",
	"ProjectorIdle":         "Idle projectors vs polling every 20 ms",
}

// Go's own units, meaningless with -benchtime 1x.
var standardUnits = []string{"ns/op", "B/op", "allocs/op", "MB/s"}

const baselinePrefix = "baseline_"

// benchmark is one benchmark's results: per run, the value of each unit.
type benchmark struct {
	name  string
	units []string // in the order first reported
	runs  []map[string]float64
}

// parse reads go test output and returns the benchmarks in the order they
// first appear, and the CPU model from the "cpu:" line.
func parse(r io.Reader) (benchmarks []*benchmark, cpu string, err error) {
	byName := map[string]*benchmark{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(c)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := benchName(f[0])
		b := byName[name]
		if b == nil {
			b = &benchmark{name: name}
			byName[name] = b
			benchmarks = append(benchmarks, b)
		}
		run := map[string]float64{}
		for i := 2; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, "", fmt.Errorf("%q: %w", line, err)
			}
			unit := f[i+1]
			if slices.Contains(standardUnits, unit) {
				continue
			}
			run[unit] = v
			if !slices.Contains(b.units, unit) {
				b.units = append(b.units, unit)
			}
		}
		b.runs = append(b.runs, run)
	}
	return benchmarks, cpu, s.Err()
}

// benchName drops the "Benchmark" prefix and the "-GOMAXPROCS" suffix.
func benchName(s string) string {
	s = strings.TrimPrefix(s, "Benchmark")
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			s = s[:i]
		}
	}
	return s
}

// row is one line of the table: medians, and the per-run ratios (or values
// when there is no baseline).
type row struct {
	label, unit              string
	project, baseline, ratio float64
	hasBaseline              bool
	runs                     []float64
}

func rows(benchmarks []*benchmark) []row {
	var out []row
	for _, b := range benchmarks {
		label := labels[b.name]
		if label == "" {
			label = b.name
		}
		for _, unit := range b.units {
			if strings.HasPrefix(unit, baselinePrefix) {
				continue
			}
			r := row{label: label, unit: unit}
			var project, baseline, ratios []float64
			for _, run := range b.runs {
				p, ok := run[unit]
				if !ok {
					continue
				}
				project = append(project, p)
				if base, ok := run[baselinePrefix+unit]; ok {
					baseline = append(baseline, base)
					if base != 0 {
						ratios = append(ratios, p/base)
					}
				}
			}
			r.project, r.runs = median(project), project
			if len(baseline) > 0 {
				r.hasBaseline, r.baseline, r.ratio, r.runs = true, median(baseline), median(ratios), ratios
			}
			out = append(out, r)
		}
	}
	return out
}

func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func write(w io.Writer, header string, rows []row) {
	fmt.Fprintf(w, "%s\n\n", header)
	fmt.Fprintln(w, "| Metric | This project | Baseline | Ratio | Runs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	for _, r := range rows {
		baseline, ratio := "", ""
		runs := make([]string, len(r.runs))
		for i, v := range r.runs {
			runs[i] = number(v)
		}
		if r.hasBaseline {
			baseline, ratio = number(r.baseline), fmt.Sprintf("%.2f", r.ratio)
			for i, v := range r.runs {
				runs[i] = fmt.Sprintf("%.2f", v)
			}
		}
		fmt.Fprintf(w, "| %s, %s | %s | %s | %s | %s |\n", r.label, r.unit, number(r.project), baseline, ratio, strings.Join(runs, ", "))
	}
}

// number prints a figure with as many decimals as its size deserves.
func number(v float64) string {
	switch a := max(v, -v); {
	case a >= 1000:
		s := strconv.FormatFloat(v, 'f', 0, 64)
		for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// postgresVersion asks the test server for its version.
func postgresVersion() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.ServerURL())
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v
}

func main() {
	peers := flag.Bool("peers", false, "the peer benchmarks' table (BenchmarkPeers): relays as columns, the forwarder's ratios to Debezium and to the raw relay")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go test -bench ... | benchtable [--peers]\n\nReads go test -bench output on stdin and prints one Markdown table of medians.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	benchmarks, cpu, err := parse(bytes.NewReader(input))
	if err != nil {
		fail(err)
	}
	if *peers {
		env, err := peerEnvironment(bytes.NewReader(input))
		if err != nil {
			fail(err)
		}
		header := fmt.Sprintf("%s: %d cores (%s)", time.Now().Format("2006-01-02"), runtime.NumCPU(), cpu)
		for _, e := range env {
			if e[0] != "cores" {
				header += fmt.Sprintf(", %s %s", e[0], e[1])
			}
		}
		runs := maxRuns(benchmarks)
		writePeers(os.Stdout, header+fmt.Sprintf("; medians of %d runs (range in brackets)", runs), runs, peerRows(benchmarks))
		return
	}
	header := fmt.Sprintf("%s: %d cores (%s), Go %s, PostgreSQL %s; medians of %d runs",
		time.Now().Format("2006-01-02"), runtime.NumCPU(), cpu, strings.TrimPrefix(runtime.Version(), "go"), postgresVersion(), maxRuns(benchmarks))
	write(os.Stdout, header, rows(benchmarks))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchtable:", err)
	os.Exit(1)
}

func maxRuns(benchmarks []*benchmark) int {
	n := 0
	for _, b := range benchmarks {
		n = max(n, len(b.runs))
	}
	return n
}
