package chaos_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/chaos"
	"github.com/es-outbox/reference/shared/testenv"
)

// TestShortChaos is the short form of `task chaos`: the same harness with a
// small load and two kill -9 of each service. It leaves out the PostgreSQL
// restart (the server is shared with every other test on the machine) and
// the broker stop. It runs only with CHAOS=1 (`go tool task chaos-short`):
// a consumer group can still stall for minutes after a replica is killed
// (docs/reliability.md, open findings), so it fails in about one run of
// three, and CI must not flap on a known, open bug.
func TestShortChaos(t *testing.T) {
	if os.Getenv("CHAOS") != "1" {
		t.Skip("set CHAOS=1 (go tool task chaos-short): fails on the open consumer-group stall, see docs/reliability.md")
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
