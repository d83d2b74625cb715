package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// BenchmarkPlaceToPaid places orders at a steady 200 per second for 10 s
// against both services running as processes, and reports the time from
// each order's OrderPlaced to its OrderPaid, from the order's event store
// (both events' recorded_at: the start of the transaction that appended
// them, a few ms before its commit) and the rate at which they got paid,
// leaving out the first second; then the peak RSS of each process.
//
//	go test -run '^$' -bench PlaceToPaid -benchtime 1x -count 3 ./payment/e2e/
func BenchmarkPlaceToPaid(b *testing.B) {
	const rate, seconds = 200, 10
	for range b.N {
		s := start(b)
		// Until the consumer groups have joined, orders wait; start after.
		first, err := s.post(4_500)
		if err != nil {
			b.Fatal(err)
		}
		s.waitForStatus(b, first, "paid")
		orderCPU, paymentCPU := cpuTime(b, s.order), cpuTime(b, s.payment)
		if err := s.placeAt(rate, rate*seconds); err != nil {
			b.Fatal(err)
		}
		paid := func() int {
			var n int
			_ = s.orderPool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = $1`, contracts.OrderPaidType).Scan(&n)
			return n
		}
		testenv.Eventually(b, 2*time.Minute, "every order paid", func() bool { return paid() == rate*seconds+1 })

		// The orders after the first second's; throughput below 200 means
		// the pipeline did not keep up and the latencies grew.
		var p50, p99, throughput float64
		err = s.orderPool.QueryRow(context.Background(), `
			WITH latency AS (
				SELECT placed.recorded_at AS placed, paid.recorded_at AS paid, extract(epoch FROM paid.recorded_at - placed.recorded_at) * 1000 AS ms
				FROM events placed JOIN events paid ON paid.stream_id = placed.stream_id AND paid.event_type = $2
				WHERE placed.event_type = $1
				ORDER BY placed.global_position OFFSET $3)
			SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), percentile_disc(0.99) WITHIN GROUP (ORDER BY ms),
				count(*) / extract(epoch FROM max(paid) - min(placed))
			FROM latency`,
			contracts.OrderPlacedType, contracts.OrderPaidType, 1+rate).Scan(&p50, &p99, &throughput)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(p50, "p50_ms")
		b.ReportMetric(p99, "p99_ms")
		b.ReportMetric(throughput, "paid_orders/s")
		// CPU per order: at 2 cores, what the services can take at most.
		b.ReportMetric(float64((cpuTime(b, s.order)-orderCPU).Milliseconds())/(rate*seconds), "order_cpu_ms/order")
		b.ReportMetric(float64((cpuTime(b, s.payment)-paymentCPU).Milliseconds())/(rate*seconds), "payment_cpu_ms/order")
		reportPeakRSS(b, s.order, "order_peak_rss_MiB")
		reportPeakRSS(b, s.payment, "payment_peak_rss_MiB")
	}
}

// BenchmarkForwarderMemory runs `order forward` as a process over a backlog
// of 20k events and, on a fresh database, of 200k, and reports its peak RSS
// once it has forwarded each: memory must not grow with the backlog.
//
//	go test -run '^$' -bench ForwarderMemory -benchtime 1x -count 3 ./payment/e2e/
func BenchmarkForwarderMemory(b *testing.B) {
	bin := testenv.Build(b, "github.com/es-outbox/reference/order/cmd/order")
	for range b.N {
		for _, backlog := range []int{20_000, 200_000} {
			pool, url := testenv.Database(b, eventstore.Migrations)
			brokers := testenv.Kafka(b)
			ctx := context.Background()
			// Orders of one item, ten events per stream, as the order
			// service would have written them over time.
			_, err := pool.Exec(ctx, `
				INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload)
				SELECT 'order-' || (i / 10), i % 10 + 1, gen_random_uuid(), 'order.Benchmarked', 1,
					jsonb_build_object('n', i, 'items', jsonb_build_array(jsonb_build_object('sku', 'sku-1', 'quantity', 1, 'unit_price', 100)))
				FROM generate_series(0, $1 - 1) AS i`, backlog)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
				b.Fatal(err)
			}
			var last int64
			if err := pool.QueryRow(ctx, `SELECT max(global_position) FROM events`).Scan(&last); err != nil {
				b.Fatal(err)
			}
			forwarder := testenv.Start(b, bin, []string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokers[0], "LOG_LEVEL=warn"}, "forward")
			testenv.Eventually(b, 5*time.Minute, fmt.Sprint("a backlog of ", backlog, " forwarded"), func() bool {
				var acked int64
				_ = pool.QueryRow(ctx, `SELECT global_position FROM reader_positions WHERE reader = 'forwarder'`).Scan(&acked)
				return acked >= last
			})
			reportPeakRSS(b, forwarder, fmt.Sprintf("peak_rss_%dk_MiB", backlog/1000))
			forwarder.Kill()
		}
	}
}

func reportPeakRSS(b *testing.B, p *testenv.Process, unit string) {
	b.Helper()
	rss, err := p.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rss, unit)
}

func cpuTime(b *testing.B, p *testenv.Process) time.Duration {
	b.Helper()
	cpu, err := p.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}
