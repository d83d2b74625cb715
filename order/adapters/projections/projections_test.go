package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// The live projector and a replay that runs while commands keep arriving
// both give the read models the aggregates dictate; a replay with nothing
// arriving gives, row by row, the tables the live projector kept. Reads
// never fail during the rebuild, and the swapped-in table keeps the
// migration's index names.
func TestReplayWhileCommandsArriveGivesTheLiveReadModels(t *testing.T) {
	pool := newDatabase(t)
	ctx := context.Background()
	indexesBefore := indexNames(t, pool)
	stopProjector := startProjector(t, pool, fastProjector)

	w := newWorkload(t, pool, 1)
	w.place(300)
	w.advance(400)
	waitCaughtUp(t, pool)
	requireEqual(t, "live projector", readTables(t, pool), expectedTables(t, pool, w.ids))

	// Commands, and reads of the live table, go on during the whole replay.
	eventsBefore := w.events
	replayDone := make(chan struct{})
	var background sync.WaitGroup
	var readErr atomic.Value
	background.Go(func() {
		for {
			select {
			case <-replayDone:
				return
			default:
				if err := errors.Join(w.tryPlace(2), w.tryAdvance(3)); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	background.Go(func() {
		last := 0
		for {
			select {
			case <-replayDone:
				return
			default:
			}
			var n int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM order_summaries`).Scan(&n)
			if err == nil && n < last {
				err = fmt.Errorf("the live table went from %d rows to %d", last, n)
			}
			if err != nil {
				readErr.Store(err)
				return
			}
			last = n
		}
	})
	slowly := projections.ReplayOptions{BatchSize: 50, Progress: func(projections.Progress) { time.Sleep(5 * time.Millisecond) }}
	for _, p := range projections.All {
		if _, err := projections.Replay(ctx, pool, p, slowly); err != nil {
			t.Fatal(err)
		}
	}
	close(replayDone)
	background.Wait()
	if err := readErr.Load(); err != nil {
		t.Fatalf("reading order_summaries during the replay: %v", err)
	}
	if w.events == eventsBefore {
		t.Fatal("no command arrived during the replay")
	}
	t.Logf("%d events before the replay, %d more during it", eventsBefore, w.events-eventsBefore)
	waitCaughtUp(t, pool)
	afterReplay := readTables(t, pool)
	requireEqual(t, "replay while commands arrived, then the live projector", afterReplay, expectedTables(t, pool, w.ids))

	stopProjector()
	for _, p := range projections.All {
		progress, err := projections.Replay(ctx, pool, p, projections.ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if progress.Stage != projections.StageDone || progress.Events != int64(w.events) {
			t.Errorf("replay of %s ended at %+v, want done after %d events", p.Name, progress, w.events)
		}
	}
	requireEqual(t, "quiet replay against the live tables", readTables(t, pool), afterReplay)
	if got := indexNames(t, pool); strings.Join(got, " ") != strings.Join(indexesBefore, " ") {
		t.Errorf("indexes after the replays: %v, want the migration's %v", got, indexesBefore)
	}
}

// A projector stopped at random moments, and in the middle of a batch (its
// events applied, its checkpoint not yet moved), and started again applies
// every event exactly once: the summaries' version check would fail on a
// double, and the tables equal a replay's.
func TestProjectorStoppedAnywhereResumesWithoutGapsOrDoubles(t *testing.T) {
	pool := newDatabase(t)
	w := newWorkload(t, pool, 2)
	w.place(400)
	w.advance(600)

	small := projections.Settings{Enabled: true, PollInterval: 5 * time.Millisecond, BatchSize: 7}
	rng := rand.New(rand.NewPCG(3, 4))
	interrupted := 0
	for stops := 0; stops < 20 && lag(t, pool) > 0; stops++ {
		stop := startProjector(t, pool, small)
		if stops%5 == 1 && everyProjectionBehind(t, pool) {
			stopMidBatch(t, pool, stop)
			interrupted++
			continue
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // a stop at a random moment
		stop()
	}
	if interrupted == 0 {
		t.Fatal("no stop interrupted a batch")
	}
	t.Logf("%d stops in the middle of a batch", interrupted)
	startProjector(t, pool, small)
	waitCaughtUp(t, pool)
	requireNoErrors(t, pool)
	live := readTables(t, pool)
	requireEqual(t, "projector stopped and started", live, expectedTables(t, pool, w.ids))

	for _, p := range projections.All {
		if _, err := projections.Replay(context.Background(), pool, p, projections.ReplayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	requireEqual(t, "replay against the resumed projector", readTables(t, pool), live)
}

// everyProjectionBehind says whether every projection has a checkpoint and
// events after it.
func everyProjectionBehind(t testing.TB, pool *pgxpool.Pool) bool {
	t.Helper()
	statuses, err := projections.Statuses(context.Background(), pool, projections.All)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if s.UpdatedAt.IsZero() || s.LagEvents == 0 {
			return false
		}
	}
	return true
}

// stopMidBatch stops a running projector in the middle of a batch of every
// projection: it holds the projections' checkpoint rows, waits until each
// projection's batch, its events applied, waits for its checkpoint row, then
// stops the projector, and checks that no checkpoint moved.
func stopMidBatch(t testing.TB, pool *pgxpool.Pool, stop func()) {
	t.Helper()
	ctx := context.Background()
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	var holder int
	before := checkpoints(t, hold, "SELECT reader, global_position FROM reader_positions ORDER BY reader FOR UPDATE")
	if err := hold.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "every projection's batch waiting to move its checkpoint", func() bool {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE '%INSERT INTO reader_positions%'`, holder).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		return waiting == len(projections.All)
	})
	stop()
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if after := checkpoints(t, pool, "SELECT reader, global_position FROM reader_positions ORDER BY reader"); after != before {
		t.Fatalf("checkpoints %s after a stop in the middle of a batch, want %s", after, before)
	}
}

// checkpoints lists the projections' checkpoints, as text, with query.
func checkpoints(t testing.TB, db eventstore.DB, query string) string {
	t.Helper()
	rows, err := db.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for rows.Next() {
		var name string
		var pos int64
		if err := rows.Scan(&name, &pos); err != nil {
			t.Fatal(err)
		}
		list = append(list, fmt.Sprint(name, "@", pos))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(list, " ")
}

// Two replicas' projectors at once, while commands arrive, apply each event
// once between them.
func TestTwoProjectorsApplyEachEventOnce(t *testing.T) {
	pool := newDatabase(t)
	replica := poolOfItsOwn(t, pool)
	small := projections.Settings{Enabled: true, PollInterval: time.Millisecond, BatchSize: 5}
	startProjector(t, pool, small)
	startProjector(t, replica, small)

	w := newWorkload(t, pool, 5)
	w.place(300)
	w.advance(500)
	waitCaughtUp(t, pool)
	requireNoErrors(t, pool)
	requireEqual(t, "two projectors", readTables(t, pool), expectedTables(t, pool, w.ids))
}

// An event the projection cannot apply stops it at that event: the error is
// recorded on the checkpoint, later events wait, and once the event can be
// applied the projector carries on by itself.
func TestFailingEventIsRecordedAndRetried(t *testing.T) {
	pool := newDatabase(t)
	ctx := context.Background()
	w := newWorkload(t, pool, 6)
	w.place(5)
	startProjector(t, pool, fastProjector)
	waitCaughtUp(t, pool)

	// A payment whose payload this code cannot read (an event of a type it
	// does not know would be passed over instead), then three more orders.
	paid := eventstore.Event{ID: uuid.NewString(), Type: contracts.OrderPaidType, SchemaVersion: contracts.OrderPaidVersion,
		Payload: []byte(`{"order_id":"` + w.ids[0] + `","charge_id":"ch-1","amount":"one","at":"2026-11-27T10:00:00Z"}`)}
	if err := eventstore.Append(ctx, pool, adapters.StreamID(w.ids[0]), 1, eventstore.Context{}, paid); err != nil {
		t.Fatal(err)
	}
	w.place(3)
	testenv.Eventually(t, 60*time.Second, "the failure recorded on both checkpoints", func() bool {
		statuses, err := projections.Statuses(ctx, pool, projections.All)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if !strings.Contains(s.LastError, "(order.OrderPaid v1)") || s.LastErrorAt.IsZero() || s.LagEvents != 4 {
				return false
			}
		}
		return true
	})

	// The event becomes readable, as a fix of the data would make it.
	if _, err := pool.Exec(ctx, `UPDATE events SET payload = jsonb_set(payload, '{amount}', '1') WHERE event_id = $1`, paid.ID); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, pool)
	requireNoErrors(t, pool)
	requireEqual(t, "after the failing event", readTables(t, pool), expectedTables(t, pool, w.ids))
}

func lag(t testing.TB, pool *pgxpool.Pool) int64 {
	t.Helper()
	statuses, err := projections.Statuses(context.Background(), pool, projections.All)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range statuses {
		total += s.LagEvents
	}
	return total
}

func requireNoErrors(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	statuses, err := projections.Statuses(context.Background(), pool, projections.All)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if s.LastError != "" {
			t.Fatalf("%s recorded an error: %s", s.Name, s.LastError)
		}
	}
}

func indexNames(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT indexname FROM pg_indexes
		WHERE tablename IN ('order_summaries', 'order_daily_stats') ORDER BY indexname COLLATE "C"`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// A second replay of a projection that is being replayed fails at once,
// and does not disturb the first.
func TestReplayRefusesWhileAnotherReplayOfTheProjectionRuns(t *testing.T) {
	pool := newDatabase(t)
	w := newWorkload(t, pool, 7)
	w.place(20)
	testenv.WaitEventsReadable(t, pool)
	ctx := context.Background()

	rebuilding, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := projections.Replay(ctx, pool, projections.OrderSummaries, projections.ReplayOptions{Progress: func(projections.Progress) {
			once.Do(func() { close(rebuilding); <-finish })
		}})
		first <- err
	}()
	<-rebuilding

	_, err := projections.Replay(ctx, pool, projections.OrderSummaries, projections.ReplayOptions{})
	if !errors.Is(err, projections.ErrReplayRunning) {
		t.Errorf("second replay: %v, want ErrReplayRunning", err)
	}
	if _, err := projections.Replay(ctx, pool, projections.OrderDailyStats, projections.ReplayOptions{}); err != nil {
		t.Errorf("replay of another projection: %v", err)
	}
	close(finish)
	if err := <-first; err != nil {
		t.Fatalf("first replay: %v", err)
	}
	if _, err := projections.Replay(ctx, pool, projections.OrderSummaries, projections.ReplayOptions{}); err != nil {
		t.Errorf("replay after the first one ended: %v", err)
	}
	requireEqual(t, "after the replays", readTables(t, pool), expectedTables(t, pool, w.ids))
}

// A projection whose very first batch fails has a checkpoint that never
// moved: its status says so (no time it was last updated) beside the error.
func TestFirstBatchFailingLeavesTheCheckpointNeverUpdated(t *testing.T) {
	pool := newDatabase(t)
	ctx := context.Background()
	placed := eventstore.Event{ID: uuid.NewString(), Type: contracts.OrderPlacedType, SchemaVersion: contracts.OrderPlacedVersion, Payload: []byte(`{"total":"lots"}`)}
	if err := eventstore.Append(ctx, pool, adapters.StreamID(uuid.NewString()), 0, eventstore.Context{}, placed); err != nil {
		t.Fatal(err)
	}
	startProjector(t, pool, fastProjector)
	testenv.Eventually(t, 60*time.Second, "the failure recorded on both checkpoints", func() bool {
		statuses, err := projections.Statuses(ctx, pool, projections.All)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.LastError == "" {
				return false
			}
		}
		return true
	})
	statuses, err := projections.Statuses(ctx, pool, projections.All)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if s.Checkpoint != eventstore.Start || !s.UpdatedAt.IsZero() {
			t.Errorf("%s: checkpoint %v, updated at %v; want the start, never updated", s.Name, s.Checkpoint, s.UpdatedAt)
		}
	}
}

// A database starts empty, autovacuum analyzes order_summaries while it is
// small, and a statement a connection has run a few times keeps the plan
// PostgreSQL made for the table as it was then: for a small table, reading
// all of it. The projector must still find the orders it updates by their
// key once the table has grown, and once autovacuum has analyzed the grown
// table too, when a batch updates many orders.
func TestTheProjectorFindsTheOrdersItUpdatesByKeyAfterTheTableGrew(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	one := testenv.OneConnection(t, url, "projector under test")
	w := newWorkload(t, pool, 7)
	w.place(100)
	stop := startProjector(t, one, fastProjector)
	waitCaughtUp(t, pool)
	if _, err := pool.Exec(context.Background(), `ANALYZE order_summaries`); err != nil {
		t.Fatal(err)
	}
	for range 10 { // more than the five runs after which PostgreSQL may keep one plan
		w.advance(2)
		waitCaughtUp(t, pool)
	}
	const orders = 5_000
	w.place(orders - 100)
	waitCaughtUp(t, pool)
	w.advance(10)
	waitCaughtUp(t, pool)

	// Autovacuum analyzes the grown table, and the projector of a busy
	// service updates a full batch of orders at once: a join that many
	// orders long must still find them by key, not hash all the table.
	stop()
	if _, err := pool.Exec(context.Background(), `ANALYZE order_summaries`); err != nil {
		t.Fatal(err)
	}
	w.advance(fastProjector.BatchSize)
	stop = startProjector(t, one, fastProjector)
	waitCaughtUp(t, pool)
	stop()
	one.Close()

	testenv.Closed(t, pool, "projector under test")
	scanned := testenv.RowsScanned(t, pool.QueryRow, "order_summaries")
	// Finding the orders of the first updates in the small table read a
	// hundred rows at a time; reading the grown table once is more than all
	// of those together.
	if scanned >= orders {
		t.Errorf("the projector read %d rows of order_summaries one by one, %d orders or more: it scanned the whole table to update a few", scanned, orders)
	}
}

// An idle projector does not poll: it waits for an append's notification
// (its idle poll interval, the fallback, is an hour here) and applies the
// new events at once when it comes.
func TestAnIdleProjectorWaitsForAnAppendsNotification(t *testing.T) {
	pool := newDatabase(t)
	projectorPool := poolOfItsOwn(t, pool)
	startProjector(t, projectorPool, projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, IdlePollInterval: time.Hour, BatchSize: 100})
	testenv.Eventually(t, 30*time.Second, "the projector listening for appends", func() bool {
		var listening bool
		err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN '||$1)`, eventstore.NotifyChannel).Scan(&listening)
		if err != nil {
			t.Fatal(err)
		}
		return listening
	})

	// Each projector reads once at its start (which may come after the
	// listener's); polling every 10 ms, each would read 50 times in this
	// half second.
	before := projectorPool.Stat().AcquireCount()
	time.Sleep(500 * time.Millisecond)
	if reads := projectorPool.Stat().AcquireCount() - before; reads > int64(2*len(projections.All)) {
		t.Errorf("the idle projectors read %d times in 500 ms; want at most %d (no polling)", reads, 2*len(projections.All))
	}

	w := newWorkload(t, pool, 7)
	w.place(3)
	w.advance(3)
	waitCaughtUp(t, pool)
	requireEqual(t, "after the notification", readTables(t, pool), expectedTables(t, pool, w.ids))
}
