// Package poisonapp is what people do with a service's poison queue: list
// and show the entries, requeue them once the cause is fixed, or discard
// them. The CLI (poisoncli) and the admin HTTP API (poisonhttp) of both
// services go through it.
package poisonapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/poison"
)

// Store keeps the poison queue's entries.
type Store interface {
	// Add stores an entry unless it is stored already, and reports whether it did.
	Add(ctx context.Context, e poison.Entry) (added bool, err error)
	// List returns the entries with the status ("" for all), oldest first.
	List(ctx context.Context, status poison.Status) ([]poison.Entry, error)
	// Get returns an entry, or poison.ErrNotFound.
	Get(ctx context.Context, id string) (poison.Entry, error)
	// Depth counts the entries still new.
	Depth(ctx context.Context) (int64, error)
	// Update runs change on the entry, locked against concurrent Updates,
	// and stores the result unless change fails.
	Update(ctx context.Context, id string, change func(context.Context, *poison.Entry) error) (poison.Entry, error)
}

// Publisher publishes a message and says where it was written.
type Publisher interface {
	Publish(ctx context.Context, m poison.Message) (poison.Position, error)
}

// ErrPublish means a requeued message could not be published: Kafka, not the
// entry, is at fault, and the entry stays new.
var ErrPublish = errors.New("could not publish the requeued message")

// Result says what a requeue or a discard did to one entry.
type Result string

// Results of requeues and discards.
const (
	Requeued     Result = "requeued"
	WouldRequeue Result = "would_requeue" // a dry run found the entry new
	Discarded    Result = "discarded"
	Unchanged    Result = "unchanged" // the entry was handled already: nothing done
)

// Outcome is what happened to one entry, and the entry afterwards.
type Outcome struct {
	Result Result
	Entry  poison.Entry
}

// RequeueRequest says which entries to requeue, and who asks.
type RequeueRequest struct {
	// IDs names the entries, unless All is set.
	IDs []string
	// All selects every new entry.
	All bool
	By  string
	// DryRun only says what would be requeued.
	DryRun bool
}

// Queue is what people do with the messages the consumer gave up on:
// look at them, publish them again once the cause is fixed, or set them
// aside. The CLI and the HTTP API both go through it.
type Queue struct {
	store     Store
	publisher Publisher
	logger    *slog.Logger
	now       func() time.Time
}

// NewQueue returns the poison queue kept in store, requeueing through publisher.
func NewQueue(store Store, publisher Publisher, logger *slog.Logger) *Queue {
	return &Queue{store: store, publisher: publisher, logger: logger, now: time.Now}
}

// Record keeps a poisoned message; a redelivered one is kept once.
func (q *Queue) Record(ctx context.Context, e poison.Entry) error {
	added, err := q.store.Add(ctx, e)
	if err != nil {
		return err
	}
	if added {
		q.logger.WarnContext(ctx, "message poisoned; kept in the poison store", "poison_id", e.ID,
			"origin", e.Origin.String(), "handler", e.Handler, "event_type", e.EventType, "reason", e.Reason)
	}
	return nil
}

// List returns the entries with the status ("" for all), oldest first.
func (q *Queue) List(ctx context.Context, status poison.Status) ([]poison.Entry, error) {
	return q.store.List(ctx, status)
}

// Entry returns one entry, or poison.ErrNotFound.
func (q *Queue) Entry(ctx context.Context, id string) (poison.Entry, error) {
	return q.store.Get(ctx, id)
}

// Depth counts the entries nobody has handled yet.
func (q *Queue) Depth(ctx context.Context) (int64, error) {
	return q.store.Depth(ctx)
}

// Requeue publishes each selected entry's message back to its original topic
// and partition, with its original key and metadata (the poison queue's own metadata
// removed, contracts.RequeuedFromKey and contracts.RequeuedAtKey added), and marks it requeued.
// Entries handled already are left alone (Unchanged). Every id is checked
// before anything is published; on an error, the outcomes so far are
// returned with it.
func (q *Queue) Requeue(ctx context.Context, req RequeueRequest) ([]Outcome, error) {
	if err := poison.CheckText("by", req.By, poison.MaxByLength); err != nil {
		return nil, err
	}
	entries, err := q.selectEntries(ctx, req.IDs, req.All)
	if err != nil {
		return nil, err
	}
	var outcomes []Outcome
	for _, e := range entries {
		if req.DryRun {
			o, err := q.planRequeue(e)
			if err != nil {
				return outcomes, err
			}
			outcomes = append(outcomes, o)
			continue
		}
		requeued, err := q.store.Update(ctx, e.ID, func(ctx context.Context, e *poison.Entry) error {
			if err := e.CheckNew(); err != nil {
				return err
			}
			now := q.now()
			msg, err := requeueMessage(*e, now)
			if err != nil {
				return err
			}
			to, err := q.publisher.Publish(ctx, msg)
			if err != nil {
				return fmt.Errorf("%w: entry %s to %s: %w", ErrPublish, e.ID, msg.Topic, err)
			}
			return e.MarkRequeued(to, req.By, now)
		})
		if errors.Is(err, poison.ErrHandled) {
			outcomes = append(outcomes, Outcome{Result: Unchanged, Entry: requeued})
			continue
		}
		if err != nil {
			return outcomes, err
		}
		q.logger.InfoContext(ctx, "poison-queue entry requeued", "poison_id", e.ID, "to", requeued.RequeuedTo.String(), "by", requeued.ChangedBy)
		outcomes = append(outcomes, Outcome{Result: Requeued, Entry: requeued})
	}
	return outcomes, nil
}

// planRequeue is a dry run's outcome for e: what Requeue would do.
func (q *Queue) planRequeue(e poison.Entry) (Outcome, error) {
	if e.CheckNew() != nil {
		return Outcome{Result: Unchanged, Entry: e}, nil
	}
	if _, err := requeueMessage(e, q.now()); err != nil {
		return Outcome{}, err
	}
	return Outcome{Result: WouldRequeue, Entry: e}, nil
}

// Discard marks the entries handled without publishing them, with the reason
// why. Entries handled already are left alone (Unchanged).
func (q *Queue) Discard(ctx context.Context, ids []string, reason, by string) ([]Outcome, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, poison.ErrReasonRequired
	}
	if err := errors.Join(poison.CheckText("reason", reason, poison.MaxReasonLength), poison.CheckText("by", by, poison.MaxByLength)); err != nil {
		return nil, err
	}
	entries, err := q.selectEntries(ctx, ids, false)
	if err != nil {
		return nil, err
	}
	var outcomes []Outcome
	for _, e := range entries {
		discarded, err := q.store.Update(ctx, e.ID, func(_ context.Context, e *poison.Entry) error {
			return e.MarkDiscarded(reason, by, q.now())
		})
		if errors.Is(err, poison.ErrHandled) {
			outcomes = append(outcomes, Outcome{Result: Unchanged, Entry: discarded})
			continue
		}
		if err != nil {
			return outcomes, err
		}
		q.logger.InfoContext(ctx, "poison-queue entry discarded", "poison_id", e.ID, "by", discarded.ChangedBy, "reason", discarded.ChangeReason)
		outcomes = append(outcomes, Outcome{Result: Discarded, Entry: discarded})
	}
	return outcomes, nil
}

// selectEntries loads the entries named by ids, or every new one if all;
// an unknown id fails the whole selection, before anything is done.
func (q *Queue) selectEntries(ctx context.Context, ids []string, all bool) ([]poison.Entry, error) {
	switch {
	case all && len(ids) > 0:
		return nil, errors.New("name entries by id or select all of them, not both")
	case all:
		return q.store.List(ctx, poison.StatusNew)
	case len(ids) == 0:
		return nil, errors.New("no entry named")
	}
	entries := make([]poison.Entry, 0, len(ids))
	for _, id := range ids {
		e, err := q.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// requeueMessage is e's message as it was consumed, marked as requeued.
func requeueMessage(e poison.Entry, at time.Time) (poison.Message, error) {
	if e.Origin.Topic == "" {
		return poison.Message{}, fmt.Errorf("%w: %s cannot be requeued", poison.ErrNoOrigin, e.ID)
	}
	metadata := maps.Clone(e.Metadata)
	if metadata == nil {
		metadata = map[string]string{}
	}
	for _, k := range contracts.PoisonMetadataKeys {
		delete(metadata, k)
	}
	metadata[contracts.RequeuedFromKey] = e.Record.String()
	metadata[contracts.RequeuedAtKey] = at.UTC().Format(time.RFC3339Nano)
	return poison.Message{Topic: e.Origin.Topic, Partition: e.Origin.Partition, Key: e.Key, ID: e.MessageID,
		Metadata: metadata, Payload: e.Payload}, nil
}
