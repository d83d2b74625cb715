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
	{Name: "PROJECTOR_POLL_INTERVAL", Default: "20ms", Usage: "how soon the projector reads again after finding no new events, while events are being appended"},
	{Name: "PROJECTOR_IDLE_POLL_INTERVAL", Default: "1s", Usage: "how soon an idle projector reads again if no append's notification wakes it"},
	{Name: "PROJECTOR_BATCH_SIZE", Default: "500", Usage: "events the projector applies per transaction"},
}

// Settings are the projector's settings.
type Settings struct {
	Enabled      bool
	PollInterval time.Duration
	// IdlePollInterval is the wait instead once nothing was appended for
	// as long (see projector.wait); default 1s.
	IdlePollInterval time.Duration
	BatchSize        int
}

// SettingsFrom reads the projector Variables from vs.
func SettingsFrom(vs envconfig.Vars) (Settings, error) {
	var (
		s    Settings
		errs [4]error
	)
	s.Enabled, errs[0] = vs.Bool("PROJECTOR_ENABLED")
	s.PollInterval, errs[1] = vs.Duration("PROJECTOR_POLL_INTERVAL", false)
	s.IdlePollInterval, errs[2] = vs.Duration("PROJECTOR_IDLE_POLL_INTERVAL", false)
	batch, err := vs.Int("PROJECTOR_BATCH_SIZE", 1)
	s.BatchSize, errs[3] = int(batch), err
	return s, errors.Join(errs[:]...)
}

// Run keeps each of the projections up to date until ctx is done.
func Run(ctx context.Context, pool *pgxpool.Pool, projections []Projection, s Settings, logger *slog.Logger) error {
	logger = logger.With("component", "projector")
	if s.IdlePollInterval == 0 {
		s.IdlePollInterval = time.Second
	}
	logger.Info("projecting events into read models", "projections", len(projections),
		"poll_interval", s.PollInterval, "idle_poll_interval", s.IdlePollInterval, "batch_size", s.BatchSize)
	g, ctx := errgroup.WithContext(ctx)
	projectors := make([]*projector, len(projections))
	for i, p := range projections {
		projectors[i] = &projector{pool: pool, projection: p, settings: s, logger: logger.With("projection", p.Name),
			folded: newFolded(), notified: make(chan struct{}, 1)}
		g.Go(func() error { return projectors[i].run(ctx) })
	}
	g.Go(func() error {
		// What was appended while nobody listened is found by each
		// projector's first read and its idle poll: no read on listening.
		eventstore.ListenForAppends(ctx, ownConn(pool), nil, func() {
			for _, p := range projectors {
				p.notify()
			}
		}, func(err error) {
			logger.Warn("listening for appended events failed; polling every idle poll interval until it works again", "err", err)
		})
		return nil
	})
	return g.Wait()
}

// ownConn is eventstore.WithConn on a connection of its own to pool's
// database, outside the pool: a listener holds its connection for as long
// as it runs, which would leave the pool's users one connection fewer.
func ownConn(pool *pgxpool.Pool) eventstore.WithConn {
	return func(ctx context.Context, fn func(*pgx.Conn) error) error {
		conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig) // Config is a copy
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return fn(conn)
	}
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

	notified chan struct{} // holds one pending notification of an append
	// lastActive is when the projector last applied events or was
	// notified of an append.
	lastActive time.Time
}

func (p *projector) notify() {
	select {
	case p.notified <- struct{}{}:
	default:
	}
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
		p.takeNotification() // what this read finds includes what was notified so far
		applied, err := p.applyNextBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if applied > 0 {
			p.lastActive = time.Now()
		}
		switch {
		case err != nil:
			failures++
			retryIn := pauses.NextBackOff()
			p.logger.Error("applying events failed; retrying", "err", err, "failures", failures, "retry_in", retryIn)
			if rerr := eventstore.RecordReaderError(ctx, p.pool, p.projection.Name, err); rerr != nil {
				p.logger.Error("cannot record the failure", "err", rerr)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retryIn):
			}
		case applied == p.settings.BatchSize:
			failures = 0
			pauses.Reset() // a full batch: more are probably waiting, read on at once
		default:
			failures = 0
			pauses.Reset()
			if !p.wait(ctx) {
				return nil
			}
		}
	}
}

// takeNotification takes the pending notification of an append, if any.
func (p *projector) takeNotification() {
	select {
	case <-p.notified:
		p.lastActive = time.Now()
	default:
	}
}

// wait waits after a read that found less than a batch, and returns false
// if ctx is done meanwhile. While events are being appended (the projector
// applied some or was notified of some within the idle poll interval) it
// waits the poll interval and reads what was appended meanwhile as one
// batch. Once idle, it waits for an append's notification, or the idle
// poll interval should one be missed: an idle projector costs about one
// query a second, yet reads a new event at once. A notified event may not
// be visible yet, behind an older transaction still open, so after each
// notification the projector polls for a while, as the forwarder does
// (shared/outbox/wakeup.go).
func (p *projector) wait(ctx context.Context) bool {
	wait, woken := p.settings.PollInterval, (<-chan struct{})(nil)
	if time.Since(p.lastActive) >= p.settings.IdlePollInterval {
		wait, woken = p.settings.IdlePollInterval, p.notified
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-woken:
		p.lastActive = time.Now()
	case <-timer.C:
	}
	return true
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
