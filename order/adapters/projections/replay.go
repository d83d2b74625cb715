package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/eventstore"
)

// ErrReplayRunning means another replay of the same projection is running.
var ErrReplayRunning = errors.New("another replay of the projection is running")

// DefaultReplayBatchSize is how many events each transaction of a rebuild
// applies unless ReplayOptions say otherwise: large enough to be fast, small
// enough that no transaction holds back other readers of the event store
// for long.
const DefaultReplayBatchSize = 1000

// Stage is a step of a replay.
type Stage string

// The stages of a replay, in order.
const (
	// StageRebuilding applies the events, from the first one, to a new table
	// beside the live one, one batch per transaction.
	StageRebuilding Stage = "rebuilding"
	// StageIndexing creates the new table's other indexes, left out while
	// it filled, then applies the events that arrived meanwhile.
	StageIndexing Stage = "indexing"
	// StageSwapping applies the last events and swaps the new table in, in
	// one transaction.
	StageSwapping Stage = "swapping"
	// StageDone: the rebuilt table is live.
	StageDone Stage = "done"
)

// Progress is how far a replay has got.
type Progress struct {
	Projection string
	Stage      Stage
	// Events is how many events have been applied to the new table.
	Events int64
	// Total estimates how many there are to apply: the events in the store
	// when the replay started, or Events once more than that have arrived.
	Total   int64
	Elapsed time.Duration
}

// Rate is the events applied per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// Remaining estimates the time left at the rate so far.
func (p Progress) Remaining() time.Duration {
	if rate := p.Rate(); rate > 0 && p.Total > p.Events {
		return time.Duration(float64(p.Total-p.Events) / rate * float64(time.Second))
	}
	return 0
}

// ReplayOptions tune a replay.
type ReplayOptions struct {
	// BatchSize is how many events each transaction applies; 0 means
	// DefaultReplayBatchSize.
	BatchSize int
	// Progress, if set, is called after every batch and at every stage.
	Progress func(Progress)
}

// Replay rebuilds projection p from the first event with no downtime. It
// fills a new table beside the live one (created LIKE it) in short
// transactions, catching up with the head while the live table keeps serving
// reads and the live projector keeps applying new events; its indexes other
// than the unique ones are built once it is full. Then, in one
// transaction that holds the projector off, it applies the last events, moves
// the checkpoint to where the new table is, and renames the new table into
// place. The projector carries on from there.
//
// Only one replay of a projection runs at a time: another one fails at once
// with ErrReplayRunning.
func Replay(ctx context.Context, pool *pgxpool.Pool, p Projection, opts ReplayOptions) (Progress, error) {
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("replay %s: %w", p.Name, err)
	}
	// The replay lock is held by this session: taking the connection out of
	// the pool and closing it at the end releases the lock however the
	// replay ends.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())

	r := &replay{conn: conn, projection: p, opts: opts, rebuild: p.Name + "_rebuild", started: time.Now()}
	if r.opts.BatchSize <= 0 {
		r.opts.BatchSize = DefaultReplayBatchSize
	}
	if err := r.run(ctx); err != nil {
		return r.progress, fmt.Errorf("replay %s: %w", p.Name, err)
	}
	return r.progress, nil
}

type replay struct {
	conn       *pgx.Conn
	projection Projection
	opts       ReplayOptions
	rebuild    string   // the new table's name
	indexes    []string // CREATE INDEX statements left for when it is full
	started    time.Time
	position   eventstore.Position // of the last event applied to the new table
	progress   Progress
}

func (r *replay) run(ctx context.Context) (err error) {
	lockName := "order projection replay " + r.projection.Name
	var locked bool
	if err := r.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, lockName).Scan(&locked); err != nil {
		return fmt.Errorf("take the replay lock: %w", err)
	}
	if !locked {
		return ErrReplayRunning
	}
	// Unlocking at once lets the next replay start straight away; closing
	// the connection would release the lock too, but a moment later.
	defer r.conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, lockName)
	// A rebuild's transactions need not be durable: after a crash the
	// next replay starts afresh. The swap is.
	if _, err := r.conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return err
	}
	if err := r.createTable(ctx); err != nil {
		return err
	}
	if err := resetSkipped(ctx, r.conn, r.rebuild); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Best effort: the next replay drops a leftover table anyway.
			_, _ = r.conn.Exec(context.Background(), `DROP TABLE IF EXISTS `+quote(r.rebuild))
			_ = resetSkipped(context.Background(), r.conn, r.rebuild)
		}
	}()
	if err := r.conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&r.progress.Total); err != nil {
		return fmt.Errorf("count events: %w", err)
	}

	r.report(StageRebuilding, 0)
	if err := r.catchUp(ctx, StageRebuilding); err != nil {
		return err
	}
	r.report(StageIndexing, 0)
	for _, sql := range r.indexes {
		if _, err := r.conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("index %s: %w", r.rebuild, err)
		}
	}
	if err := r.catchUp(ctx, StageIndexing); err != nil {
		return err
	}
	r.report(StageSwapping, 0)
	applied, err := r.swap(ctx)
	if err != nil {
		return err
	}
	r.report(StageDone, applied)
	return nil
}

// createTable creates the new table, empty, LIKE the live one, dropping one
// left by a replay that did not finish. Of its indexes it keeps only the
// unique ones, which applying events needs (updates find rows by them,
// upserts detect conflicts with them), and keeps the others' definitions
// for when the table is full: building an index once is much cheaper than
// updating it row by row.
func (r *replay) createTable(ctx context.Context) error {
	for _, sql := range []string{
		`DROP TABLE IF EXISTS ` + quote(r.rebuild),
		`CREATE TABLE ` + quote(r.rebuild) + ` (LIKE ` + quote(r.projection.Name) + ` INCLUDING ALL)`,
	} {
		if _, err := r.conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create table %s: %w", r.rebuild, err)
		}
	}
	rows, _ := r.conn.Query(ctx, `SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
		WHERE indrelid = $1::regclass AND NOT indisunique`, quote(r.rebuild))
	type index struct{ Name, Definition string }
	later, err := pgx.CollectRows(rows, pgx.RowToStructByPos[index])
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", r.rebuild, err)
	}
	for _, i := range later {
		if _, err := r.conn.Exec(ctx, `DROP INDEX `+i.Name); err != nil {
			return fmt.Errorf("drop index %s until %s is full: %w", i.Name, r.rebuild, err)
		}
		r.indexes = append(r.indexes, i.Definition)
	}
	return nil
}

// catchUp applies batches to the new table until it is near enough the head
// for the next stage, reporting them as stage.
func (r *replay) catchUp(ctx context.Context, stage Stage) error {
	for {
		applied, err := r.applyNextBatch(ctx)
		if err != nil {
			return err
		}
		r.report(stage, applied)
		if applied < r.opts.BatchSize {
			return nil
		}
	}
}

// applyNextBatch applies the next batch of events to the new table in a
// transaction of its own.
func (r *replay) applyNextBatch(ctx context.Context) (int, error) {
	var events []eventstore.RecordedEvent
	err := pgx.BeginFunc(ctx, r.conn, func(tx pgx.Tx) error {
		var err error
		events, err = r.applyBatch(ctx, tx, r.position)
		return err
	})
	if err != nil || len(events) == 0 {
		return 0, err
	}
	r.position = events[len(events)-1].Position
	return len(events), nil
}

// applyBatch applies the events after position, up to a batch, to the new
// table in tx, and returns them.
func (r *replay) applyBatch(ctx context.Context, tx pgx.Tx, after eventstore.Position) ([]eventstore.RecordedEvent, error) {
	events, err := eventstore.ReadAll(ctx, tx, after, r.opts.BatchSize)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	return events, applyEvents(ctx, tx, r.projection, r.rebuild, events, nil)
}

// swap applies the events the new table still lacks and puts it in the live
// table's place, in one transaction. The apply lock waits for a projector's
// batch in flight and holds the next one off; once this transaction has
// written, its own transaction id bounds what it can read, so the tail ends.
// Readers of the live table wait only for the rename.
func (r *replay) swap(ctx context.Context) (applied int, err error) {
	live, position := r.projection.Name, r.position
	err = pgx.BeginFunc(ctx, r.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
		if err := lockApply(ctx, tx, live); err != nil {
			return err
		}
		for {
			events, err := r.applyBatch(ctx, tx, position)
			if err != nil {
				return err
			}
			if len(events) > 0 {
				position = events[len(events)-1].Position
				applied += len(events)
			}
			if len(events) < r.opts.BatchSize {
				break
			}
		}
		if err := eventstore.SaveReaderPosition(ctx, tx, live, position); err != nil {
			return err
		}
		if err := swapSkipped(ctx, tx, live, r.rebuild); err != nil {
			return err
		}
		for _, sql := range []string{
			`DROP TABLE ` + quote(live),
			`ALTER TABLE ` + quote(r.rebuild) + ` RENAME TO ` + quote(live),
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("swap %s in for %s: %w", r.rebuild, live, err)
			}
		}
		return renameIndexes(ctx, tx, live, r.rebuild)
	})
	if err != nil {
		return 0, err
	}
	r.position = position
	return applied, nil
}

// renameIndexes gives the swapped-in table's indexes the names the live
// table's had: CREATE TABLE ... LIKE named them after the new table
// (order_summaries_rebuild_pkey), and migrations refer to them by the
// PostgreSQL default names the migration gave them (order_summaries_pkey).
func renameIndexes(ctx context.Context, tx pgx.Tx, table, rebuild string) error {
	rows, _ := tx.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1`, table)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", table, err)
	}
	for _, name := range names {
		if suffix, ok := strings.CutPrefix(name, rebuild); ok {
			if _, err := tx.Exec(ctx, `ALTER INDEX `+quote(name)+` RENAME TO `+quote(table+suffix)); err != nil {
				return fmt.Errorf("rename index %s: %w", name, err)
			}
		}
	}
	return nil
}

// report updates the progress with applied more events and passes it on.
func (r *replay) report(stage Stage, applied int) {
	p := &r.progress
	p.Projection, p.Stage, p.Elapsed = r.projection.Name, stage, time.Since(r.started)
	p.Events += int64(applied)
	p.Total = max(p.Total, p.Events)
	if r.opts.Progress != nil {
		r.opts.Progress(*p)
	}
}

func quote(table string) string { return pgx.Identifier{table}.Sanitize() }
