package chaos_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/chaos"
	"github.com/es-outbox/reference/shared/testenv"
)

// TestShortChaos is the short form of `task chaos`, run with the other tests
// (and so in CI): the same harness with a small load, two kill -9 of each
// service and one broker stop of 2 s. It leaves out the PostgreSQL restart
// (the server is shared with every other test on the machine). `go test
// -short` skips it.
func TestShortChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run takes about a minute")
	}
	var log strings.Builder
	report, err := chaos.Run(t.Context(), chaos.Config{
		Bins: chaos.Binaries{
			Order:    testenv.Build(t, "github.com/es-outbox/reference/order/cmd/order"),
			Payment:  testenv.Build(t, "github.com/es-outbox/reference/payment/cmd/payment"),
			DevKafka: testenv.Build(t, "github.com/es-outbox/reference/shared/cmd/devkafka"),
		},
		ServerURL: serverURL(),
		WorkDir:   t.TempDir(),
		Orders:    40, Interval: 50 * time.Millisecond,
		OrderKills: 2, PaymentKills: 2,
		BrokerStops: 1, BrokerDowntime: 2 * time.Second,
		QuiesceTimeout: 2 * time.Minute,
		Seed:           time.Now().UnixNano(),
		Log:            &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var table strings.Builder
	report.Print(&table)
	t.Logf("%s\n%s", log.String(), table.String())
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
