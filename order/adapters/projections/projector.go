package projections

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Variables configure the projector.
var Variables = envconfig.Vars{
	{Name: "PROJECTOR_ENABLED", Default: "true", Usage: "keep the read models (projections) up to date inside `serve`"},
	{Name: "PROJECTOR_POLL_INTERVAL", Default: "20ms", Usage: "how soon the projector reads again after finding no new events"},
	{Name: "PROJECTOR_BATCH_SIZE", Default: "500", Usage: "events the projector applies per transaction"},
}

// Settings are the projector's settings.
type Settings struct {
	Enabled      bool
	PollInterval time.Duration
	BatchSize    int
}

// SettingsFrom reads the projector Variables from vs.
func SettingsFrom(vs envconfig.Vars) (Settings, error) {
	var (
		s    Settings
		errs [3]error
	)
	s.Enabled, errs[0] = vs.Bool("PROJECTOR_ENABLED")
	s.PollInterval, errs[1] = vs.Duration("PROJECTOR_POLL_INTERVAL", false)
	batch, err := vs.Int("PROJECTOR_BATCH_SIZE", 1)
	s.BatchSize, errs[2] = int(batch), err
	return s, errors.Join(errs[:]...)
}

// Run keeps each of the projections up to date until ctx is done.
func Run(ctx context.Context, pool *pgxpool.Pool, projections []Projection, s Settings, logger *slog.Logger) error {
	logger = logger.With("component", "projector")
	logger.Info("projecting events into read models", "projections", len(projections), "poll_interval", s.PollInterval, "batch_size", s.BatchSize)
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range projections {
		projector := &projector{pool: pool, projection: p, settings: s, logger: logger.With("projection", p.Name), folded: newFolded()}
		g.Go(func() error { return projector.run(ctx) })
	}
	return g.Wait()
}

// projector applies new events to one projection's live table, in commit
// order, one batch per transaction that also moves the checkpoint. Any
// number of projectors of the same projection may run (one per replica):
// a lock lets one of them apply each batch.
type projector struct {
	pool       *pgxpool.Pool
	projection Projection
	settings   Settings
	logger     *slog.Logger
	folded     *folded // the orders it applied last (see folded)
}

// run applies events until ctx is done. Stopping it at any moment is safe:
// a batch in flight is rolled back with its checkpoint and applied again by
// the next run. A batch that fails is recorded on the checkpoint and retried
// with growing pauses (from 100ms to 10s, exponential with jitter, as
// Watermill's retry middleware pauses): the projection waits at the failing
// event rather than skip it.
func (p *projector) run(ctx context.Context) error {
	pauses := backoff.NewExponentialBackOff()
	pauses.InitialInterval, pauses.MaxInterval = 100*time.Millisecond, 10*time.Second
	failures := 0
	for {
		applied, err := p.applyNextBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := p.settings.PollInterval
		switch {
		case err != nil:
			failures++
			wait = pauses.NextBackOff()
			p.logger.Error("applying events failed; retrying", "err", err, "failures", failures, "retry_in", wait)
			if rerr := eventstore.RecordReaderError(ctx, p.pool, p.projection.Name, err); rerr != nil {
				p.logger.Error("cannot record the failure", "err", rerr)
			}
		case applied == p.settings.BatchSize:
			failures = 0
			pauses.Reset()
			continue // a full batch: more are probably waiting
		default:
			failures = 0
			pauses.Reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// applyNextBatch applies the events after the checkpoint, up to a batch, and
// moves the checkpoint, in one transaction. It applies nothing while another
// projector (or a replay's swap) holds the projection's lock.
func (p *projector) applyNextBatch(ctx context.Context) (applied int, err error) {
	name := p.projection.Name
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if locked, err := tryLockApply(ctx, tx, name); err != nil || !locked {
			return err
		}
		from, err := eventstore.ReaderPosition(ctx, tx, name)
		if err != nil {
			return err
		}
		events, err := eventstore.ReadAll(ctx, tx, from, p.settings.BatchSize)
		if err != nil || len(events) == 0 {
			return err
		}
		if err := applyEvents(ctx, tx, p.projection, name, events, p.folded); err != nil {
			return err
		}
		applied = len(events)
		return eventstore.SaveReaderPosition(ctx, tx, name, events[len(events)-1].Position)
	})
	if err != nil {
		return 0, err
	}
	return applied, nil
}
