package outbox_test

import (
	"slices"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Two forwarders of one group (two replicas of a service) share the work:
// the group's lock lets one of them at a time read and send a batch, after
// the offset the previous one stored, so without a fault a backlog arrives
// exactly once, each stream's events in order. (Without the lock, or with
// a lock taken after the read's snapshot, a third to two thirds of the
// batches went twice.)
func TestTwoForwardersOfOneGroupSendTheBacklogOnce(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ids := appendEvents(t, pool, "order", 20, 50) // 1,000 events
	startForwarder(t, pool, brokers, 20)
	startForwarder(t, pool, brokers, 20)
	last := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the backlog forwarded", func() bool { return storedOffset(t, pool) == last })

	sent := testenv.RecordCount(t, brokers, "order.events")
	if sent != 1000 {
		t.Fatalf("the two forwarders sent %d records for 1,000 events: both sent the same batches", sent)
	}
	seen := firstArrivals(testenv.Records(t, brokers, "order.events", 1000, 30*time.Second))
	for stream, want := range ids {
		if !slices.Equal(seen[stream], want) {
			t.Errorf("stream %s: %d of %d events arrived, first occurrences out of stream order at position %d",
				stream, len(seen[stream]), len(want), firstDifference(seen[stream], want))
		}
	}
}
