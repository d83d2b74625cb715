package chaos_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/chaos"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// TestShortChaos is the short form of `task chaos`, run with the other tests
// (and so in CI): the same harness with a small load, two kill -9 of each
// service and one broker stop of 2 s. It leaves out the PostgreSQL restart
// (the server is shared with every other test on the machine). `go test
// -short` skips it.
//
// With TEST_KAFKA_CLUSTER (`task test-kafka`) it runs on the real 3-node
// Apache Kafka cluster instead, and adds the faults only a cluster has: the
// leader of a partition killed, and two of three nodes killed at once (below
// min.insync.replicas).
func TestShortChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run takes about a minute")
	}
	var log strings.Builder
	cfg := chaos.Config{
		Bins: chaos.Binaries{
			Order:   testenv.Build(t, "github.com/es-outbox/reference/order/cmd/order"),
			Payment: testenv.Build(t, "github.com/es-outbox/reference/payment/cmd/payment"),
		},
		ServerURL: serverURL(),
		WorkDir:   t.TempDir(),
		Orders:    40, Interval: 50 * time.Millisecond,
		OrderKills: 2, PaymentKills: 2,
		BrokerStops: 1, BrokerDowntime: 2 * time.Second,
		QuiesceTimeout: 2 * time.Minute,
		Seed:           time.Now().UnixNano(),
		Log:            &log,
	}
	if os.Getenv("TEST_KAFKA_CLUSTER") != "" {
		cfg.Cluster = testenv.KafkaCluster(t)
		// The rolling restart (a minute or more here) is left to the full
		// run and TestForwarderKeepsEveryEventThroughARollingRestart.
		cfg.MajorityOutages, cfg.BrokerDowntime = 1, 3*time.Second
		// A node takes seconds to start: a longer, slower load keeps orders
		// arriving through the broker faults.
		cfg.Orders, cfg.Interval = 60, time.Second
		cfg.QuiesceTimeout = 3 * time.Minute
	} else {
		cfg.Bins.DevKafka = testenv.Build(t, "github.com/es-outbox/reference/shared/devtools/cmd/devkafka")
	}
	report, err := chaos.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var table strings.Builder
	report.Print(&table)
	t.Logf("seed %d\n%s\n%s", cfg.Seed, log.String(), table.String())
	if !report.OK() {
		t.Errorf("the chaos checks failed:\n%s", strings.Join(report.Problems(), "\n"))
	}
	if report.Accepted == 0 {
		t.Error("no order was accepted")
	}
}

func serverURL() string {
	for _, v := range []string{os.Getenv("TEST_DATABASE_URL"), os.Getenv("DATABASE_URL")} {
		if v != "" {
			return v
		}
	}
	return testenv.DefaultDatabaseURL
}
