package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// kneeP99 is the latency an offered rate must keep, at the 99th percentile
// from OrderPlaced to OrderPaid, to count as held (issue 16's goal).
const kneeP99 = 250.0

// kneeRates are the offered rates BenchmarkPlaceToPaidKnee steps through,
// in orders per second; kneeStep is how long each is offered.
var kneeRates = []int{200, 400, 600, 800, 1000, 1200, 1400}

const kneeStep = 5 * time.Second

// BenchmarkPlaceToPaidKnee finds the system's knee: it offers orders at
// rising rates (kneeRates, kneeStep each, letting the pipeline drain
// between steps) to both services running as processes, and reports the
// highest rate whose orders were all paid with a p99 from OrderPlaced to
// OrderPaid of at most 250 ms, placed at 90% of the rate at least (the
// client shares the cores); at that rate, the CPU each service spent per
// order (and, beside it, the PostgreSQL server's: all its processes, exact
// when nothing else uses the server) and the PostgreSQL commits per order
// (pg_stat_database's xact_commit of both services' databases: every transaction, read-only
// ones included; and the transaction ids assigned on the server, the
// writing ones alone, exact when the server runs nothing else), and the
// commits per second that makes beside the server's own rate of small
// concurrent commits, measured first in the same run (16 clients, one-row
// INSERTs, 3 s): the limit it is compared with. Then each service's peak
// RSS over the run. Each step's log also says the p50 and p99 of the first
// leg (OrderPlaced to PaymentSucceeded) and where the orders not yet paid
// waited when the last was placed. If not even the lowest rate holds (a busy machine), the
// knee is 0 and the figures are that rate's. Each step is logged (-v).
//
// With PLACE_TO_PAID_PROFILE=DIR each step also writes a CPU profile of
// each service (DIR/order-RATE.pprof, DIR/payment-RATE.pprof) and, if the
// server has pg_stat_statements loaded, the statements of the step with
// their calls per order (DIR/statements-RATE.txt).
//
// With PLACE_TO_PAID_RATES (rates, comma-separated) and PLACE_TO_PAID_STEP
// (a duration) it offers those rates, each for that long, instead: the
// issue's sustained test is PLACE_TO_PAID_RATES=1000 PLACE_TO_PAID_STEP=60s.
//
// With PLACE_TO_PAID_REPLICAS=N it runs N replicas of each service (as a
// deployment would: the order replicas share the forwarder's and the
// projector's work by their locks, the payment replicas and the order
// replicas each split their topic's partitions in their consumer group),
// places the orders on the order replicas in turn, waits until both
// consumer groups have N members before the first step, and reports the
// CPU per order of all the replicas of a service together and the highest
// peak RSS of any of them. The profiles are then the first replica's.
//
//	go test -run '^$' -bench PlaceToPaidKnee -benchtime 1x -count 3 ./payment/e2e/
func BenchmarkPlaceToPaidKnee(b *testing.B) {
	profileDir := os.Getenv("PLACE_TO_PAID_PROFILE")
	var orderProfiles, paymentProfiles string
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			b.Fatal(err)
		}
		orderProfiles, paymentProfiles = freeAddr(b), freeAddr(b)
	}
	rates, step := kneeRates, kneeStep
	if v := os.Getenv("PLACE_TO_PAID_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			rate, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || rate < 1 {
				b.Fatalf("PLACE_TO_PAID_RATES=%q: want orders per second, comma-separated", v)
			}
			rates = append(rates, rate)
		}
	}
	if v := os.Getenv("PLACE_TO_PAID_STEP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			b.Fatalf("PLACE_TO_PAID_STEP=%q: want a duration of a second or more, such as 60s", v)
		}
		step = d
	}
	replicas := 1
	if v := os.Getenv("PLACE_TO_PAID_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("PLACE_TO_PAID_REPLICAS=%q: want a number of replicas, 1 or more", v)
		}
		replicas = n
	}
	for range b.N {
		s := &kneeSystem{system: newSystem(b), step: step}
		for i := range replicas {
			orderEnv, paymentEnv := "PPROF_ADDR=", "PPROF_ADDR="
			if i == 0 {
				orderEnv, paymentEnv = orderEnv+orderProfiles, paymentEnv+paymentProfiles
			}
			order, url := s.runOrder(b, orderEnv)
			s.orders, s.orderURLs = append(s.orders, order), append(s.orderURLs, url)
			s.payments = append(s.payments, s.runPayment(b, paymentEnv))
		}
		s.order, s.orderURL, s.payment = s.orders[0], s.orderURLs[0], s.payments[0]
		ctx := context.Background()
		// The server's statistics; pg_stat_statements, where loaded, is
		// in its postgres database.
		server, err := pgxpool.New(ctx, testenv.ServerURL())
		if err != nil {
			b.Fatal(err)
		}
		defer server.Close()
		commitRate := postgresCommitRate(b)
		s.postmaster = postmaster(b, server)

		first, err := s.post(4_500)
		if err != nil {
			b.Fatal(err)
		}
		s.waitForStatus(b, first, "paid")
		waitForMembers(b, s.brokers, replicas, contracts.PaymentGroup, contracts.OrderGroup)
		var knee, lowest *kneeStepResult
		for _, rate := range rates {
			var profiles errgroup.Group
			if profileDir != "" {
				resetStatements(ctx, server)
				for name, addr := range map[string]string{"order": orderProfiles, "payment": paymentProfiles} {
					profiles.Go(func() error {
						return cpuProfile(addr, step, filepath.Join(profileDir, fmt.Sprintf("%s-%d.pprof", name, rate)))
					})
				}
			}
			step, err := s.offer(b, server, rate)
			if perr := profiles.Wait(); perr != nil {
				b.Logf("profile at %d orders/s: %v", rate, perr)
			}
			if err != nil {
				b.Logf("%d orders/s offered: %v", rate, err)
				break
			}
			if profileDir != "" {
				writeStatements(b, ctx, server, step.orders, filepath.Join(profileDir, fmt.Sprintf("statements-%d.txt", rate)))
			}
			b.Logf("%d orders/s offered: %.0f placed/s, p50 %.0f ms, p99 %.0f ms (charged: %.0f, %.0f ms), CPU per order %.2f ms (order) + %.2f ms (payment), beside PostgreSQL %.2f ms and the benchmark %.2f ms, commits per order %.2f (%.2f writing); at the last order placed, events waiting for %s",
				rate, step.placedRate, step.p50, step.p99, step.chargedP50, step.chargedP99, step.orderCPU, step.paymentCPU, step.postgresCPU, step.benchCPU, step.commits, step.writeCommits, step.queues)
			if step.windows != nil {
				b.Logf("%d orders/s offered: p99 of the orders placed in each %s, in turn: %.0f ms", rate, latencyWindow, step.windows)
			}
			if lowest == nil {
				lowest = &step
			}
			if step.p99 > kneeP99 || step.placedRate < 0.9*float64(rate) {
				break
			}
			knee = &step
		}
		kneeRate := 0
		switch {
		case knee != nil:
			kneeRate = knee.rate
		case lowest != nil:
			// Not even the lowest rate held (a busy machine): its figures
			// are the ones there are, beside a knee of 0.
			b.Logf("no rate held with p99 <= %.0f ms; the figures are the lowest rate's", kneeP99)
			knee = lowest
		default:
			b.Fatal("the lowest rate was not paid")
		}
		b.ReportMetric(float64(kneeRate), "knee_orders/s")
		b.ReportMetric(knee.p50, "p50_ms")
		b.ReportMetric(knee.p99, "p99_ms")
		b.ReportMetric(knee.orderCPU, "order_cpu_ms/order")
		b.ReportMetric(knee.paymentCPU, "payment_cpu_ms/order")
		b.ReportMetric(knee.postgresCPU, "postgres_cpu_ms/order")
		b.ReportMetric(knee.commits, "pg_commits/order")
		b.ReportMetric(knee.writeCommits, "pg_write_commits/order")
		b.ReportMetric(knee.commits*float64(knee.rate), "pg_commits/s")
		b.ReportMetric(commitRate, "baseline_pg_commits/s")
		b.ReportMetric(float64(replicas), "replicas")
		b.ReportMetric(peakRSS(b, s.orders), "order_peak_rss_MiB")
		b.ReportMetric(peakRSS(b, s.payments), "payment_peak_rss_MiB")
	}
}

// kneeSystem is the system BenchmarkPlaceToPaidKnee runs: one or more
// replicas of each service (the first also as system's order and payment).
type kneeSystem struct {
	*system
	orders, payments []*testenv.Process
	orderURLs        []string
	// step is how long each rate is offered.
	step time.Duration
	// postmaster is the PostgreSQL server's process, 0 if it is not on
	// this machine.
	postmaster int
}

// postmaster returns the pid of the PostgreSQL server's main process (the
// parent of a backend's), or 0 if the server is not on this machine.
func postmaster(b *testing.B, server *pgxpool.Pool) int {
	var backend int
	if err := server.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", backend))
	pid, perr := testenv.ParentPID(backend)
	if err != nil || perr != nil || strings.TrimSpace(string(comm)) != "postgres" {
		b.Logf("PostgreSQL's backend %d is not a process on this machine: no PostgreSQL CPU per order", backend)
		return 0
	}
	return pid
}

// otherCPU returns the CPU used so far by the PostgreSQL server (0 if it
// is not on this machine) and by this process (the client placing the
// orders, and the dev broker when it runs in it).
func (s *kneeSystem) otherCPU(b *testing.B) (postgres, bench time.Duration) {
	if s.postmaster != 0 {
		var err error
		if postgres, err = testenv.TreeCPUTime(s.postmaster); err != nil {
			b.Fatal(err)
		}
	}
	bench, err := testenv.CPUTime(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return postgres, bench
}

// cpuTimes is the CPU the processes have used together.
func cpuTimes(b *testing.B, ps []*testenv.Process) time.Duration {
	var sum time.Duration
	for _, p := range ps {
		sum += cpuTime(b, p)
	}
	return sum
}

// peakRSS is the highest peak RSS of the processes, in MiB.
func peakRSS(b *testing.B, ps []*testenv.Process) float64 {
	var peak float64
	for _, p := range ps {
		rss, err := p.PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, rss)
	}
	return peak
}

// waitForMembers waits until each consumer group has n members, settled:
// until then a replica that joins late takes partitions from another in
// the middle of a step.
func waitForMembers(b *testing.B, brokers []string, n int, groups ...string) {
	b.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	adm := kadm.NewClient(client)
	testenv.Eventually(b, time.Minute, fmt.Sprintf("%d members in each of the groups %v", n, groups), func() bool {
		described, err := adm.DescribeGroups(context.Background(), groups...)
		if err != nil {
			return false
		}
		for _, g := range groups {
			if d := described[g]; d.Err != nil || d.State != "Stable" || len(d.Members) != n {
				return false
			}
		}
		return true
	})
}

// kneeStepResult is what one offered rate gave.
type kneeStepResult struct {
	rate       int
	orders     int
	placedRate float64 // the rate the orders were actually placed at
	p50, p99   float64 // ms from OrderPlaced to OrderPaid
	// Of those, the ms from OrderPlaced to PaymentSucceeded (forwarded,
	// consumed and charged) at the median and the 99th percentile.
	chargedP50, chargedP99 float64
	// CPU ms per order from the step's start until its last order was
	// paid: of each service, of the PostgreSQL server, and of the
	// benchmark's process (the client and the dev broker, if it is that).
	orderCPU, paymentCPU, postgresCPU, benchCPU float64
	// Where the orders not yet paid waited when the last was placed.
	queues string
	// The p99 (ms) of the orders placed in each 10 s of a longer step,
	// in turn: whether a step's p99 comes from one stall or from a
	// latency that grows.
	windows []float64
	// Transactions committed per order in both services' databases, and
	// transaction ids assigned on the server per order.
	commits, writeCommits float64
}

// offer places orders at rate for s.step, on the order replicas in turn,
// and waits until every one is paid (a minute at most: a rate that leaves
// more behind is not held).
func (s *kneeSystem) offer(b *testing.B, server *pgxpool.Pool, rate int) (kneeStepResult, error) {
	ctx := context.Background()
	r := kneeStepResult{rate: rate, orders: int(float64(rate) * s.step.Seconds())}
	var from int64
	if err := s.orderPool.QueryRow(ctx, `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&from); err != nil {
		return r, err
	}
	commits0, xid0 := s.commits(b, server)
	orderCPU, paymentCPU := cpuTimes(b, s.orders), cpuTimes(b, s.payments)
	postgresCPU, benchCPU := s.otherCPU(b)
	started := time.Now()
	if err := s.placeOn(s.orderURLs, rate, r.orders); err != nil {
		return r, err
	}
	r.placedRate = float64(r.orders) / time.Since(started).Seconds()
	r.queues = s.queues(ctx)
	paid := func() int {
		var n int
		_ = s.orderPool.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = $1 AND global_position > $2`, contracts.OrderPaidType, from).Scan(&n)
		return n
	}
	for deadline := time.Now().Add(time.Minute); paid() < r.orders; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%d of %d orders paid after a minute", paid(), r.orders)
		}
	}
	r.orderCPU = float64((cpuTimes(b, s.orders) - orderCPU).Microseconds()) / 1000 / float64(r.orders)
	r.paymentCPU = float64((cpuTimes(b, s.payments) - paymentCPU).Microseconds()) / 1000 / float64(r.orders)
	postgresCPU1, benchCPU1 := s.otherCPU(b)
	r.postgresCPU = float64((postgresCPU1 - postgresCPU).Microseconds()) / 1000 / float64(r.orders)
	r.benchCPU = float64((benchCPU1 - benchCPU).Microseconds()) / 1000 / float64(r.orders)
	commits1, xid1 := s.commits(b, server)
	r.commits, r.writeCommits = float64(commits1-commits0)/float64(r.orders), float64(xid1-xid0)/float64(r.orders)
	err := s.orderPool.QueryRow(ctx, `WITH latency AS (`+placedToPaid+`)
		SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) FROM latency`,
		contracts.OrderPlacedType, contracts.OrderPaidType, from).Scan(&r.p50, &r.p99)
	if err != nil {
		return r, err
	}
	if s.step > latencyWindow {
		if r.windows, err = s.windowedP99(ctx, from); err != nil {
			return r, err
		}
	}
	r.chargedP50, r.chargedP99, err = s.chargedLatency(ctx, from)
	return r, err
}

// placedToPaid is, for each order placed after position $3, when it was
// placed and the ms from its OrderPlaced ($1) to its OrderPaid ($2).
const placedToPaid = `SELECT placed.recorded_at AS placed_at, extract(epoch FROM paid.recorded_at - placed.recorded_at) * 1000 AS ms
	FROM events placed JOIN events paid ON paid.stream_id = placed.stream_id AND paid.event_type = $2
	WHERE placed.event_type = $1 AND placed.global_position > $3`

// latencyWindow is how much of a longer step each of its p99s covers.
const latencyWindow = 10 * time.Second

// windowedP99 returns the p99 from OrderPlaced to OrderPaid of the orders
// placed (after position from) in each latencyWindow, in turn.
func (s *system) windowedP99(ctx context.Context, from int64) ([]float64, error) {
	rows, err := s.orderPool.Query(ctx, `WITH latency AS (`+placedToPaid+`),
		windowed AS (SELECT floor(extract(epoch FROM placed_at - min(placed_at) OVER ()) / $4) AS slot, ms FROM latency)
		SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::float8 FROM windowed GROUP BY slot ORDER BY slot`,
		contracts.OrderPlacedType, contracts.OrderPaidType, from, latencyWindow.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[float64])
}

// chargedLatency returns the percentiles of the time from OrderPlaced (in
// the order database, after position from) to PaymentSucceeded (in the
// payment database; the same server's clock).
func (s *system) chargedLatency(ctx context.Context, from int64) (p50, p99 float64, err error) {
	placed := map[string]time.Time{}
	rows, err := s.orderPool.Query(ctx, `SELECT substr(stream_id, 7), recorded_at FROM events WHERE event_type = $1 AND global_position > $2`, contracts.OrderPlacedType, from)
	if err != nil {
		return 0, 0, err
	}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return 0, 0, err
		}
		placed[id] = at
	}
	rows.Close()
	rows, err = s.paymentPool.Query(ctx, `SELECT substr(stream_id, 9), recorded_at FROM events WHERE event_type = $1`, contracts.PaymentSucceededType)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var ms []float64
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return 0, 0, err
		}
		if p, ok := placed[id]; ok {
			ms = append(ms, float64(at.Sub(p).Microseconds())/1000)
		}
	}
	return testenv.Percentile(ms, 50), testenv.Percentile(ms, 99), rows.Err()
}

// queues says how many events wait at each stage of the pipeline: for the
// order service's forwarder (OrderPlaced not yet forwarded), in
// order.events for the payment service (forwarded, not yet charged), for
// the payment service's forwarder, and in payment.events for the order
// service (forwarded, the order not yet paid).
func (s *system) queues(ctx context.Context) string {
	const stage = `SELECT count(*) FILTER (WHERE e.event_type = $1),
			count(*) FILTER (WHERE e.event_type = $1 AND (e.transaction_id, e.global_position) <= (p.transaction_id, p.global_position))
		FROM events e LEFT JOIN reader_positions p ON p.reader = 'forwarder'`
	var placed, placedForwarded, charged, chargedForwarded, paid int64
	_ = s.orderPool.QueryRow(ctx, stage, contracts.OrderPlacedType).Scan(&placed, &placedForwarded)
	_ = s.paymentPool.QueryRow(ctx, stage, contracts.PaymentSucceededType).Scan(&charged, &chargedForwarded)
	_ = s.orderPool.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = $1`, contracts.OrderPaidType).Scan(&paid)
	return fmt.Sprintf("the order forwarder %d, the payment consumer %d, the payment forwarder %d, the order consumer %d",
		placed-placedForwarded, placedForwarded-charged, charged-chargedForwarded, chargedForwarded-paid)
}

// commits returns the transactions committed so far in both services'
// databases, and the server's next transaction id (read without taking
// one).
func (s *system) commits(b *testing.B, server *pgxpool.Pool) (commits, nextXID int64) {
	b.Helper()
	ctx := context.Background()
	// The statistics of other backends are read as of the first access in
	// a transaction, and flushed by each backend at most once a second
	// (stats_fetch_consistency, PostgreSQL 15): clear the snapshot and
	// allow for the flush.
	time.Sleep(1100 * time.Millisecond)
	err := server.QueryRow(ctx, `
		SELECT pg_stat_clear_snapshot()::text, (SELECT sum(xact_commit)::bigint FROM pg_stat_database WHERE datname = ANY($1)),
			pg_snapshot_xmax(pg_current_snapshot())::text::bigint`,
		[]string{s.orderPool.Config().ConnConfig.Database, s.paymentPool.Config().ConnConfig.Database}).Scan(new(string), &commits, &nextXID)
	if err != nil {
		b.Fatal(err)
	}
	return commits, nextXID
}

// postgresCommitRate measures the server's rate of small commits: 16
// clients each inserting one row per transaction for 3 s, into a database
// of its own on the same server.
func postgresCommitRate(b *testing.B) float64 {
	b.Helper()
	pool, _ := testenv.Database(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	perSecond, _, err := testenv.Concurrently(16, 3*time.Second, func() error {
		_, err := pool.Exec(ctx, `INSERT INTO commits DEFAULT VALUES`)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("PostgreSQL commits %.0f small transactions a second (16 clients)", perSecond)
	return perSecond
}

// cpuProfile writes a CPU profile of d from the profiles endpoint at addr.
func cpuProfile(addr string, d time.Duration, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// resetStatements clears pg_stat_statements, if the server has it.
func resetStatements(ctx context.Context, server *pgxpool.Pool) {
	_, _ = server.Exec(ctx, `SELECT pg_stat_statements_reset()`)
}

// writeStatements writes the statements run since resetStatements, by
// calls, with their calls and total time per order.
func writeStatements(b *testing.B, ctx context.Context, server *pgxpool.Pool, orders int, path string) {
	rows, err := server.Query(ctx, `
		SELECT d.datname, s.calls, s.total_exec_time, s.rows, regexp_replace(s.query, '\s+', ' ', 'g')
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname LIKE 'test_%' ORDER BY s.calls DESC LIMIT 40`)
	if err != nil {
		b.Logf("pg_stat_statements: %v", err)
		return
	}
	defer rows.Close()
	var out strings.Builder
	fmt.Fprintf(&out, "%d orders\n%-18s %10s %10s %10s  %s\n", orders, "database", "calls/ord", "ms/ord", "rows/call", "query")
	for rows.Next() {
		var db, query string
		var calls, n int64
		var ms float64
		if err := rows.Scan(&db, &calls, &ms, &n, &query); err != nil {
			b.Logf("pg_stat_statements: %v", err)
			return
		}
		fmt.Fprintf(&out, "%-18s %10.2f %10.3f %10.1f  %.220s\n", db, float64(calls)/float64(orders), ms/float64(orders), float64(n)/float64(calls), query)
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		b.Log(err)
	}
}
