package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/eventstore"
)

// WaitEventsReadable waits until every event committed to pool's event store
// is readable by its readers (eventstore.ReadAll, the forwarder, the
// projector). They only read events older than the oldest transaction open
// anywhere on the server, and the tests of other packages, or other
// programs, may hold one open for a moment.
func WaitEventsReadable(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	Eventually(t, 60*time.Second, "every committed event readable", func() bool {
		var unreadable int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM events WHERE `+eventstore.NotYetVisible).Scan(&unreadable)
		if err != nil {
			t.Fatalf("testenv: count unreadable events: %v", err)
		}
		return unreadable == 0
	})
}
