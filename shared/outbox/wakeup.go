package outbox

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/jackc/pgx/v5/stdlib"

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

// listen takes a connection of db for LISTEN until ctx is done, and takes
// another one a second after losing it; meanwhile the poll interval applies.
func (w *wakeUp) listen(ctx context.Context, db *sql.DB, logger watermill.LoggerAdapter) {
	for ctx.Err() == nil {
		err := w.listenOnce(ctx, db)
		if ctx.Err() != nil {
			return
		}
		logger.Error("Listening for appended events failed; polling until it works again", err, nil)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (w *wakeUp) listenOnce(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return errors.New("outbox: waking up on notifications needs the pgx driver")
		}
		pg := c.Conn()
		if _, err := pg.Exec(ctx, "LISTEN "+eventstore.NotifyChannel); err != nil {
			return err
		}
		// The connection goes back to the pool: stop listening on it first.
		defer func() {
			if !pg.IsClosed() {
				unlisten, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, _ = pg.Exec(unlisten, "UNLISTEN *")
			}
		}()
		// Events appended while nobody listened: read them now.
		w.notify()
		for {
			if _, err := pg.WaitForNotification(ctx); err != nil {
				return err
			}
			w.notify()
		}
	})
}
