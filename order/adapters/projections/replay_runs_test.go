package projections_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// holdApplyLock takes the lock the swap of a replay of p needs, so that the
// replay waits there, in plain sight; release lets it go on.
func holdApplyLock(t *testing.T, pool *pgxpool.Pool, p projections.Projection) (release func()) {
	t.Helper()
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock(hashtextextended($1, 0))`, projections.ApplyLockName(p.Name)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock_all()`)
			conn.Release()
		})
	}
}

func countEvents(t *testing.T, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReplayerShowsProgressToEveryReplicaAndRefusesASecondRun(t *testing.T) {
	pool := newDatabase(t)
	w := newWorkload(t, pool, 7)
	w.place(60)
	w.advance(30)
	testenv.WaitEventsReadable(t, pool)
	events := countEvents(t, pool)
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.DiscardHandler)
	// Two replicas' replayers over one database.
	here, there := projections.NewReplayer(ctx, pool, logger), projections.NewReplayer(ctx, pool, logger)
	t.Cleanup(func() { cancel(); here.Wait(); there.Wait() })

	release := holdApplyLock(t, pool, projections.OrderSummaries)
	defer release()
	if err := here.Start(ctx, projections.OrderSummaries); err != nil {
		t.Fatal(err)
	}
	var run projections.ReplayRun
	testenv.Eventually(t, time.Minute, "the rebuild waiting at its swap", func() bool {
		runs, err := there.Runs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		run = runs[projections.OrderSummaries.Name]
		return run.Running() && run.Stage == projections.StageSwapping
	})
	if run.Events != events || run.Total != events {
		t.Errorf("the other replica sees %d of %d events done, want all %d", run.Events, run.Total, events)
	}
	if err := there.Start(ctx, projections.OrderSummaries); !errors.Is(err, projections.ErrReplayRunning) {
		t.Errorf("a second rebuild from another replica = %v, want ErrReplayRunning", err)
	}
	if err := there.Start(ctx, projections.OrderDailyStats); err != nil {
		t.Errorf("a rebuild of another projection = %v, want it started", err)
	}

	release()
	testenv.Eventually(t, time.Minute, "both rebuilds done", func() bool {
		runs, _ := here.Runs(ctx)
		return !runs["order_summaries"].Running() && !runs["order_daily_stats"].Running()
	})
	runs, _ := here.Runs(ctx)
	for _, name := range []string{"order_summaries", "order_daily_stats"} {
		if r := runs[name]; r.Error != "" || r.Stage != projections.StageDone || r.Events != events {
			t.Errorf("%s: %+v, want done with %d events", name, r, events)
		}
	}
	requireEqual(t, "the rebuilt read models", readTables(t, pool), expectedTables(t, pool, w.ids))
	if err := here.Start(ctx, projections.OrderSummaries); err != nil {
		t.Errorf("a rebuild after the last one ended = %v, want it started", err)
	}
}

func TestReplayerRecordsARunStoppedByShutdown(t *testing.T) {
	pool := newDatabase(t)
	newWorkload(t, pool, 8).place(5)
	testenv.WaitEventsReadable(t, pool)
	ctx, shutdown := context.WithCancel(context.Background())
	r := projections.NewReplayer(ctx, pool, slog.New(slog.DiscardHandler))
	release := holdApplyLock(t, pool, projections.OrderSummaries)
	defer release()
	if err := r.Start(context.Background(), projections.OrderSummaries); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the rebuild waiting at its swap", func() bool {
		runs, _ := r.Runs(context.Background())
		return runs["order_summaries"].Stage == projections.StageSwapping
	})
	shutdown()
	r.Wait()
	runs, err := r.Runs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if run := runs["order_summaries"]; run.Running() || !strings.Contains(run.Error, "shut down") {
		t.Errorf("run after shutdown: %+v, want it ended, saying the service shut down", run)
	}
}
