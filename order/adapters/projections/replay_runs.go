package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A run that has not moved for staleAfter is taken to have died with its
// replica: a live one moves at every batch and at least every heartbeat.
const (
	heartbeat  = 5 * time.Second
	staleAfter = 30 * time.Second
	// saveEvery bounds how often a run writes its progress between stages.
	saveEvery = 250 * time.Millisecond
)

// ReplayRun is a replay started in the background (from the console), as
// every replica sees it in projection_replays.
type ReplayRun struct {
	Projection string
	Stage      Stage
	Events     int64
	Total      int64
	StartedAt  time.Time
	UpdatedAt  time.Time
	// FinishedAt is zero while the run is going.
	FinishedAt time.Time
	// Error says why a finished run failed; empty if it is done.
	Error string
}

// Running says whether the run is still going.
func (r ReplayRun) Running() bool { return r.FinishedAt.IsZero() }

// Replayer runs replays in the background and records their progress in
// projection_replays, where any replica reads it.
type Replayer struct {
	pool   *pgxpool.Pool
	ctx    context.Context
	logger *slog.Logger
	wg     sync.WaitGroup
}

// NewReplayer returns a Replayer whose replays run until ctx is done.
func NewReplayer(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) *Replayer {
	return &Replayer{pool: pool, ctx: ctx, logger: logger}
}

// Start starts a replay of p in the background and returns at once. It
// returns ErrReplayRunning if a run of p started elsewhere (any replica) is
// still going. A replay that `order replay` runs is refused by the replay
// itself, and that run records the refusal as its error.
func (r *Replayer) Start(ctx context.Context, p Projection) error {
	// Claimed in one statement, so that of two replicas starting at once
	// one wins.
	tag, err := r.pool.Exec(ctx, `
		INSERT INTO projection_replays (projection, stage) VALUES ($1, $2)
		ON CONFLICT (projection) DO UPDATE
		SET stage = EXCLUDED.stage, events = 0, total = 0, started_at = now(), updated_at = now(), finished_at = NULL, error = NULL
		WHERE projection_replays.finished_at IS NOT NULL OR projection_replays.updated_at < now() - $3::interval`,
		p.Name, StageRebuilding, staleAfter.String())
	if err != nil {
		return fmt.Errorf("start a replay of %s: %w", p.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrReplayRunning
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(p)
	}()
	return nil
}

// Wait waits for the replays started to end (they end with the context
// NewReplayer was given).
func (r *Replayer) Wait() { r.wg.Wait() }

func (r *Replayer) run(p Projection) {
	ctx, stop := context.WithCancel(r.ctx)
	defer stop()
	go func() { // the heartbeat, for the stages that report nothing for long
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = r.pool.Exec(ctx, `UPDATE projection_replays SET updated_at = now() WHERE projection = $1 AND finished_at IS NULL`, p.Name)
			}
		}
	}()
	var saved time.Time
	var stage Stage
	progress, err := Replay(ctx, r.pool, p, ReplayOptions{Progress: func(pr Progress) {
		if pr.Stage == stage && time.Since(saved) < saveEvery {
			return
		}
		stage, saved = pr.Stage, time.Now()
		r.save(ctx, pr, nil)
	}})
	if err != nil {
		r.logger.Error("replay failed", "projection", p.Name, "err", err)
	} else {
		r.logger.Info("replay done", "projection", p.Name, "events", progress.Events, "elapsed", progress.Elapsed)
	}
	progress.Projection = p.Name
	r.save(context.WithoutCancel(ctx), progress, &err)
}

// save records pr; with done, the run's end and its error (nil: done).
func (r *Replayer) save(ctx context.Context, pr Progress, done *error) {
	var finished bool
	var errText *string
	if done != nil {
		finished = true
		if *done != nil {
			msg := (*done).Error()
			if errors.Is(*done, context.Canceled) {
				msg = "stopped: the service shut down"
			}
			errText = &msg
		}
	}
	stage := pr.Stage
	if stage == "" {
		stage = StageRebuilding
	}
	_, err := r.pool.Exec(ctx, `
		UPDATE projection_replays SET stage = $2, events = $3, total = $4, updated_at = now(),
			finished_at = CASE WHEN $5 THEN now() END, error = $6
		WHERE projection = $1 AND finished_at IS NULL`,
		pr.Projection, stage, pr.Events, pr.Total, finished, errText)
	if err != nil && ctx.Err() == nil {
		r.logger.Warn("record replay progress", "projection", pr.Projection, "err", err)
	}
}

// Runs returns the latest run of each projection that has one. A run that
// stopped moving long ago shows as failed.
func (r *Replayer) Runs(ctx context.Context) (map[string]ReplayRun, error) {
	rows, _ := r.pool.Query(ctx, `
		SELECT projection, stage, events, total, started_at, updated_at, finished_at, error,
		       finished_at IS NULL AND updated_at < now() - $1::interval
		FROM projection_replays`, staleAfter.String())
	runs := map[string]ReplayRun{}
	var run ReplayRun
	var finished *time.Time
	var errText *string
	var stale bool
	_, err := pgx.ForEachRow(rows, []any{&run.Projection, &run.Stage, &run.Events, &run.Total, &run.StartedAt, &run.UpdatedAt, &finished, &errText, &stale}, func() error {
		run.FinishedAt, run.Error = time.Time{}, ""
		if finished != nil {
			run.FinishedAt = *finished
		}
		if errText != nil {
			run.Error = *errText
		}
		if stale {
			run.FinishedAt, run.Error = run.UpdatedAt, "stopped answering: its replica probably died"
		}
		runs[run.Projection] = run
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read projection_replays: %w", err)
	}
	return runs, nil
}
