package eventstore

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/tracing"
)

// GroupCommit serves the loads of work done at the same time with one
// query and stores its appends with one statement, in one transaction: a
// group commit. A consumer handling several messages at once
// (shared/consumer) starts each attempt at a message with Start, and the
// order service's repository each order it adds (the API's orders placed
// at the same time). Every Commit made with the context Start returns
// joins the group and waits until the group is stored, so its caller still
// returns only once its events are durable (and the message is acked only
// then); every Load from
// the group's pool made with it joins the group's loads and waits for
// their query. So a handler's "load, decide, commit" costs the database
// two round trips per group instead of two per message.
//
// What waits in the group, loads and appends alike, goes as soon as every
// piece of work in progress waits in it, or MaxDelay after the first one
// joined, whichever comes first, so work that takes long (a slow gateway)
// holds the others back by at most MaxDelay. The appends' statement and
// the loads' query then run at the same time.
//
// All or none of a group's statement commits. If it fails (a stream not at
// its version, a payload PostgreSQL refuses, the server gone), each append
// of the group is tried again alone: each caller gets the error of its own
// append, exactly as without a group, so one failing message fails (and is
// retried and poisoned) alone and the others are stored. If the loads'
// query fails, each load is tried alone for the same reason (a row of one
// stream that does not scan must not fail the others' messages). Each
// caller gets what a lone Load gives it: its stream's events, or
// ErrStreamNotFound.
type GroupCommit struct {
	db       DB
	maxDelay time.Duration

	mu      sync.Mutex
	working int            // pieces of work started and not ended
	waiting []*groupMember // loads and appends joined since the group last went
	timer   *time.Timer

	statements atomic.Int64
	appends    atomic.Int64
	queries    atomic.Int64
	loads      atomic.Int64
}

// DefaultGroupDelay is how long a group waits at most for work still in
// progress before it goes without it.
const DefaultGroupDelay = 5 * time.Millisecond

// NewGroupCommit returns a group commit that loads from and stores in db
// (the service's pool; the db given to Commit is not used for grouped
// appends, and only loads from db itself join the group) and waits at most
// maxDelay (DefaultGroupDelay if 0) for work in progress.
func NewGroupCommit(db DB, maxDelay time.Duration) *GroupCommit {
	if maxDelay <= 0 {
		maxDelay = DefaultGroupDelay
	}
	return &GroupCommit{db: db, maxDelay: maxDelay}
}

// groupMember is one append or one load waiting in a group, and where its
// answer goes.
type groupMember struct {
	ctx    context.Context
	append *streamAppend // what an append stores; nil for a load
	stream string        // the stream a load reads
	done   chan groupAnswer
}

// groupAnswer is what a member's caller gets: the events of a load, and
// the error of either.
type groupAnswer struct {
	events []RecordedEvent
	err    error
}

type groupKey struct{}

// Start marks the start of one piece of work whose Commits and Loads (made
// with the returned context) join the group; end must be called when the
// work ends, committed or not, so that the group does not wait for it. On
// a nil GroupCommit it returns ctx as it is: the work's Commits and Loads
// go alone.
func (g *GroupCommit) Start(ctx context.Context) (_ context.Context, end func()) {
	if g == nil {
		return ctx, func() {}
	}
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
				go g.run(batch)
			}
		})
	}
}

// GroupStats counts what a group commit did so far. The appends and loads
// tried alone after a group's statement or query failed count as
// statements and queries of their own.
type GroupStats struct {
	Statements, Appends int64 // the INSERT statements and the appends they stored
	Queries, Loads      int64 // the queries and the loads they served
}

// Stats returns what the group did so far.
func (g *GroupCommit) Stats() GroupStats {
	return GroupStats{
		Statements: g.statements.Load(), Appends: g.appends.Load(),
		Queries: g.queries.Load(), Loads: g.loads.Load(),
	}
}

func groupFrom(ctx context.Context) *GroupCommit {
	g, _ := ctx.Value(groupKey{}).(*GroupCommit)
	return g
}

// loadGroup is the group a load from db joins: that of ctx, if db is the
// pool the group reads. A load in a transaction reads alone, inside it (it
// must see the transaction's own writes), and so does one from any other
// database or connection.
func loadGroup(ctx context.Context, db DB) *GroupCommit {
	g := groupFrom(ctx)
	if pool, ok := db.(*pgxpool.Pool); !ok || g == nil || g.db != DB(pool) {
		return nil
	}
	return g
}

// append joins the group and waits until it is stored.
func (g *GroupCommit) append(ctx context.Context, a streamAppend) error {
	return g.join(&groupMember{ctx: ctx, append: &a}).err
}

// load joins the group's loads and waits for their query.
func (g *GroupCommit) load(ctx context.Context, streamID string) ([]RecordedEvent, error) {
	answer := g.join(&groupMember{ctx: ctx, stream: streamID})
	return answer.events, answer.err
}

// join adds m to what waits, runs the group if that was the last work in
// progress to join it (or starts the MaxDelay timer if m is the first),
// and waits for m's answer.
func (g *GroupCommit) join(m *groupMember) groupAnswer {
	m.done = make(chan groupAnswer, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, m)
	batch := g.takeIfAllWaitLocked()
	if batch == nil && len(g.waiting) == 1 {
		g.timer = time.AfterFunc(g.maxDelay, g.runWaiting)
	}
	g.mu.Unlock()
	if batch != nil {
		g.run(batch)
	}
	select {
	case answer := <-m.done:
		return answer
	case <-m.ctx.Done():
		// Stored or not, the caller does not know: as after a lost
		// acknowledgement, the message is handled again and finds out.
		return groupAnswer{err: m.ctx.Err()}
	}
}

// takeIfAllWaitLocked takes what waits if no work in progress is still to
// join it.
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

// runWaiting runs what waits when MaxDelay has passed.
func (g *GroupCommit) runWaiting() {
	g.mu.Lock()
	batch := g.takeLocked()
	g.mu.Unlock()
	if len(batch) > 0 {
		g.run(batch)
	}
}

// run serves a group's loads with one query while it stores its appends
// with one statement.
func (g *GroupCommit) run(batch []*groupMember) {
	var appends, loads []*groupMember
	for _, m := range batch {
		if m.append != nil {
			appends = append(appends, m)
		} else {
			loads = append(loads, m)
		}
	}
	if len(loads) > 0 {
		go g.serveLoads(loads)
	}
	if len(appends) > 0 {
		g.store(appends)
	}
}

// serveLoads reads the streams of a group's loads in one query; if that
// fails, each load alone.
func (g *GroupCommit) serveLoads(batch []*groupMember) {
	g.queries.Add(1)
	g.loads.Add(int64(len(batch)))
	streams := make([]string, len(batch))
	for i, m := range batch {
		streams[i] = m.stream
	}
	// The query runs for all of them, so one caller giving up does not
	// stop it.
	found, err := LoadStreams(context.WithoutCancel(batch[0].ctx), g.db, streams)
	if err != nil {
		var wg sync.WaitGroup
		for _, m := range batch {
			wg.Go(func() {
				events, err := loadAlone(m.ctx, g.db, m.stream)
				m.done <- groupAnswer{events, err}
			})
		}
		wg.Wait()
		g.queries.Add(int64(len(batch)))
		return
	}
	served := map[string]bool{}
	for _, m := range batch {
		events := found[m.stream]
		if served[m.stream] {
			// Two loads of one stream: each gets events of its own, as
			// each would from a query of its own.
			events = cloneEvents(events)
		}
		served[m.stream] = true
		events, err := streamFound(m.stream, events)
		m.done <- groupAnswer{events, err}
	}
}

// cloneEvents copies events, payloads and metadata included.
func cloneEvents(events []RecordedEvent) []RecordedEvent {
	clone := slices.Clone(events)
	for i := range clone {
		clone[i].Payload = bytes.Clone(clone[i].Payload)
		clone[i].Metadata = maps.Clone(clone[i].Metadata)
	}
	return clone
}

// store appends a group in one statement; if that fails, each append alone.
func (g *GroupCommit) store(batch []*groupMember) {
	g.statements.Add(1)
	g.appends.Add(int64(len(batch)))
	if len(batch) == 1 {
		m := batch[0]
		m.done <- groupAnswer{err: Append(m.ctx, g.db, m.append.streamID, m.append.expectedVersion, m.append.origin, m.append.events...)}
		return
	}
	appends := make([]streamAppend, len(batch))
	events := 0
	for i, m := range batch {
		appends[i] = *m.append
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
			m.done <- groupAnswer{}
		}
		return
	}
	// Nothing of the group is stored: each append alone, with its own
	// answer (a conflict for the stream that conflicts, nil for the rest).
	var wg sync.WaitGroup
	for _, m := range batch {
		wg.Go(func() {
			m.done <- groupAnswer{err: Append(context.WithoutCancel(m.ctx), g.db, m.append.streamID, m.append.expectedVersion, m.append.origin, m.append.events...)}
		})
	}
	wg.Wait()
	g.statements.Add(int64(len(batch)))
}
