package eventstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// WithConn runs fn on a connection held for it until fn returns: one
// opened for it, or one taken from a pool (a database/sql connection's
// driver connection, say).
type WithConn func(ctx context.Context, fn func(*pgx.Conn) error) error

// ListenForAppends calls notified whenever an append notifies
// NotifyChannel, LISTENing on a connection that withConn gives it, and
// listening (unless nil) each time it has started to listen: events may
// have been appended while nobody listened. It tells failed when it loses
// the connection and takes another a second later; it returns when ctx is
// done.
//
// A notification only says that events were appended: not every append
// notifies, and a notified event may not be visible yet (NotifyChannel).
// A reader that waits for notifications therefore also polls for a while
// after each, and slowly when none comes.
func ListenForAppends(ctx context.Context, withConn WithConn, listening, notified func(), failed func(error)) {
	for ctx.Err() == nil {
		err := withConn(ctx, func(conn *pgx.Conn) error { return listen(ctx, conn, listening, notified) })
		if ctx.Err() != nil {
			return
		}
		failed(err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func listen(ctx context.Context, conn *pgx.Conn, listening, notified func()) error {
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	// The connection may go back to a pool: stop listening on it first.
	defer func() {
		if !conn.IsClosed() {
			unlisten, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, _ = conn.Exec(unlisten, "UNLISTEN *")
		}
	}()
	if listening != nil {
		listening()
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		notified()
	}
}
