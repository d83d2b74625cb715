package outbox

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/shared/eventstore"
)

// wakeUp decides how long the SQL subscriber waits after a read that found
// nothing (it is the subscriber's BackoffManager). It waits for PostgreSQL to
// notify a commit to the events table (LISTEN on a connection of its own),
// so an idle forwarder costs almost no queries yet reads a new event at once.
// A notified event can still be invisible, behind an older transaction that
// is still open and notifies nothing when it ends; so for a while after each
// notification the subscriber also polls every pollInterval, and otherwise
// every idlePollInterval, which also covers a lost listening connection.
type wakeUp struct {
	errors                 wsql.BackoffManager
	pollInterval, idlePoll time.Duration
	notified               chan struct{} // holds one pending notification
	lastNotified           atomic.Int64  // unix nanoseconds
	stopped                chan struct{}
}

func newWakeUp(pollInterval, idlePollInterval, retryInterval time.Duration) *wakeUp {
	return &wakeUp{
		errors:       wsql.NewDefaultBackoffManager(pollInterval, retryInterval),
		pollInterval: pollInterval,
		idlePoll:     idlePollInterval,
		notified:     make(chan struct{}, 1),
		stopped:      make(chan struct{}),
	}
}

// HandleError waits, after a read that found nothing, until a notification,
// the poll interval or the stop; errors go to Watermill's default handling.
func (w *wakeUp) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil || !noMsg {
		return w.errors.HandleError(logger, noMsg, err)
	}
	wait := w.idlePoll
	if time.Since(time.Unix(0, w.lastNotified.Load())) < w.idlePoll {
		wait = w.pollInterval
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-w.notified:
	case <-timer.C:
	case <-w.stopped:
	}
	return 0
}

func (w *wakeUp) notify() {
	w.lastNotified.Store(time.Now().UnixNano())
	select {
	case w.notified <- struct{}{}:
	default:
	}
}

// stop ends the current and every later wait at once, so the subscriber
// closes without waiting for a poll interval.
func (w *wakeUp) stop() { close(w.stopped) }

// listen wakes the subscriber on every append notified, and once it
// listens (to read what was appended while nobody listened), on a
// connection of db, until ctx is done; while it has none, the poll
// interval applies.
func (w *wakeUp) listen(ctx context.Context, db *sql.DB, logger watermill.LoggerAdapter) {
	eventstore.ListenForAppends(ctx, driverConn(db), w.notify, w.notify, func(err error) {
		logger.Error("Listening for appended events failed; polling until it works again", err, nil)
	})
}

// driverConn is eventstore.WithConn for db: pgx's connection under one of
// db's, held for fn's duration.
func driverConn(db *sql.DB) eventstore.WithConn {
	return func(ctx context.Context, fn func(*pgx.Conn) error) error {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return withPgx(conn, fn)
	}
}
