package eventstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/tracing"
)

// GroupCommit stores the appends of work done at the same time with one
// statement, in one transaction: a group commit. A consumer handling
// several messages at once (shared/consumer) starts each attempt at a
// message with Start; every Commit made with the context Start returns
// joins the group and waits until the group is stored, so its caller still
// returns only once its events are durable (and the message is acked only
// then). The group is stored as soon as every piece of work in progress
// waits in it, or MaxDelay after the first one joined, whichever comes
// first, so work that takes long (a slow gateway) holds the others back by
// at most MaxDelay.
//
// All or none of a group's statement commits. If it fails (a stream not at
// its version, a payload PostgreSQL refuses, the server gone), each append
// of the group is tried again alone: each caller gets the error of its own
// append, exactly as without a group, so one failing message fails (and is
// retried and poisoned) alone and the others are stored.
type GroupCommit struct {
	db       DB
	maxDelay time.Duration

	mu      sync.Mutex
	working int            // pieces of work started and not ended
	waiting []*groupMember // appends joined since the last store
	timer   *time.Timer

	statements atomic.Int64
	appends    atomic.Int64
}

// DefaultGroupDelay is how long a group waits at most for work still in
// progress before it is stored without it.
const DefaultGroupDelay = 5 * time.Millisecond

// NewGroupCommit returns a group commit that stores in db (the service's
// pool; the db given to Commit is not used for grouped appends) and waits
// at most maxDelay (DefaultGroupDelay if 0) for work in progress.
func NewGroupCommit(db DB, maxDelay time.Duration) *GroupCommit {
	if maxDelay <= 0 {
		maxDelay = DefaultGroupDelay
	}
	return &GroupCommit{db: db, maxDelay: maxDelay}
}

// groupMember is one append waiting in a group, and where its result goes.
type groupMember struct {
	ctx    context.Context
	append streamAppend
	done   chan error
}

type groupKey struct{}

// Start marks the start of one piece of work whose Commits (made with the
// returned context) join the group; end must be called when the work ends,
// committed or not, so that the group does not wait for it.
func (g *GroupCommit) Start(ctx context.Context) (_ context.Context, end func()) {
	g.mu.Lock()
	g.working++
	g.mu.Unlock()
	var once sync.Once
	return context.WithValue(ctx, groupKey{}, g), func() {
		once.Do(func() {
			g.mu.Lock()
			g.working--
			batch := g.takeIfAllWaitLocked()
			g.mu.Unlock()
			if batch != nil {
				go g.store(batch)
			}
		})
	}
}

// Stats returns how many statements stored how many appends so far.
func (g *GroupCommit) Stats() (statements, appends int64) {
	return g.statements.Load(), g.appends.Load()
}

func groupFrom(ctx context.Context) *GroupCommit {
	g, _ := ctx.Value(groupKey{}).(*GroupCommit)
	return g
}

// append joins the group and waits until it is stored.
func (g *GroupCommit) append(ctx context.Context, a streamAppend) error {
	m := &groupMember{ctx: ctx, append: a, done: make(chan error, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, m)
	batch := g.takeIfAllWaitLocked()
	if batch == nil && len(g.waiting) == 1 {
		g.timer = time.AfterFunc(g.maxDelay, g.storeWaiting)
	}
	g.mu.Unlock()
	if batch != nil {
		g.store(batch)
	}
	select {
	case err := <-m.done:
		return err
	case <-ctx.Done():
		// Stored or not, the caller does not know: as after a lost
		// acknowledgement, the message is handled again and finds out.
		return ctx.Err()
	}
}

// takeIfAllWaitLocked takes the waiting appends if no work in progress is
// still to join them.
func (g *GroupCommit) takeIfAllWaitLocked() []*groupMember {
	if len(g.waiting) == 0 || len(g.waiting) < g.working {
		return nil
	}
	return g.takeLocked()
}

func (g *GroupCommit) takeLocked() []*groupMember {
	batch := g.waiting
	g.waiting = nil
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	return batch
}

// storeWaiting stores what waits when MaxDelay has passed.
func (g *GroupCommit) storeWaiting() {
	g.mu.Lock()
	batch := g.takeLocked()
	g.mu.Unlock()
	if len(batch) > 0 {
		g.store(batch)
	}
}

// store appends a group in one statement; if that fails, each append alone.
func (g *GroupCommit) store(batch []*groupMember) {
	g.statements.Add(1)
	g.appends.Add(int64(len(batch)))
	if len(batch) == 1 {
		m := batch[0]
		m.done <- Append(m.ctx, g.db, m.append.streamID, m.append.expectedVersion, m.append.origin, m.append.events...)
		return
	}
	appends := make([]streamAppend, len(batch))
	events := 0
	for i, m := range batch {
		appends[i] = m.append
		events += len(m.append.events)
	}
	// The statement runs for all of them, so one caller giving up does not
	// stop it; its span is the first caller's.
	ctx, span := otel.Tracer("github.com/es-outbox/reference/shared/eventstore").Start(context.WithoutCancel(batch[0].ctx),
		"append events of a group", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL, semconv.DBOperationName("INSERT"), semconv.DBCollectionName("events"),
			attribute.Int("event_store.streams", len(batch)), attribute.Int("event_store.events", events),
		))
	err := appendStreams(ctx, g.db, appends)
	tracing.End(span, err)
	if err == nil {
		for _, m := range batch {
			m.done <- nil
		}
		return
	}
	// Nothing of the group is stored: each append alone, with its own
	// answer (a conflict for the stream that conflicts, nil for the rest).
	var wg sync.WaitGroup
	for _, m := range batch {
		wg.Go(func() {
			m.done <- Append(context.WithoutCancel(m.ctx), g.db, m.append.streamID, m.append.expectedVersion, m.append.origin, m.append.events...)
		})
	}
	wg.Wait()
	g.statements.Add(int64(len(batch)))
}
