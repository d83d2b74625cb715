// Package poison is the poison queue seen as work for people: each entry is a
// message a consumer gave up on after its retries, kept with where it came
// from and why it failed, until someone requeues it (once the cause is fixed)
// or discards it (with a reason). Pure Go: no SQL, no Kafka, no HTTP.
//
// Both services keep one (payment.poison, order.poison) with the same code:
// the use cases in poisonapp, the PostgreSQL store in poisonstore, the Kafka
// side (the consumer that fills the store, the requeue publisher) in
// poisonkafka, the admin HTTP API and the depth metric in poisonhttp, and
// the `poison list|show|requeue|discard` commands in poisoncli.
package poison

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/es-outbox/reference/shared/text"
)

// Status is what has become of an entry.
type Status string

// An entry starts new and is handled once: requeued or discarded, never both.
const (
	StatusNew       Status = "new"
	StatusRequeued  Status = "requeued"
	StatusDiscarded Status = "discarded"
)

var (
	// ErrNotFound means no entry has the id.
	ErrNotFound = errors.New("no poison-queue entry with this id")
	// ErrHandled means the entry was requeued or discarded already, so there
	// is nothing left to do with it.
	ErrHandled = errors.New("poison-queue entry handled already")
	// ErrInvalidStatus means a status filter is not one of the statuses or "all".
	ErrInvalidStatus = errors.New("status must be new, requeued, discarded or all")
	// ErrReasonRequired means a discard did not say why.
	ErrReasonRequired = errors.New("a discard needs a reason")
	// ErrNoOrigin means the entry does not name the topic it was consumed
	// from, so there is nowhere to requeue it to.
	ErrNoOrigin = errors.New("poison-queue entry does not name its original topic")
)

// Limits of what people write on an entry, which the store keeps as text.
const (
	MaxByLength     = 100
	MaxReasonLength = 500
)

// FieldError says which field of a request (by, reason) cannot be kept,
// and why.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Message }

// CheckText returns a FieldError if value cannot be kept as field: too
// long, or holding what PostgreSQL's text refuses (NUL, invalid UTF-8) or
// control characters.
func CheckText(field, value string, maxChars int) error {
	if problem := text.Problem(value, maxChars); problem != "" {
		return &FieldError{Field: field, Message: problem}
	}
	return nil
}

// ParseStatusFilter reads a status to list by: a status, or "all", which is
// returned as "" (no filter).
func ParseStatusFilter(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusNew, StatusRequeued, StatusDiscarded:
		return st, nil
	case "all":
		return "", nil
	}
	return "", fmt.Errorf("%w, not %q", ErrInvalidStatus, s)
}

// Position is where a record is in Kafka. Partition and Offset are -1 when
// they are not known (a record produced by hand may not say).
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
}

// String is "topic partition/offset", or just the topic when the rest is unknown.
func (p Position) String() string {
	if p.Partition < 0 || p.Offset < 0 {
		return p.Topic
	}
	return fmt.Sprintf("%s %d/%d", p.Topic, p.Partition, p.Offset)
}

// IDFor is the id of the entry for the poison-topic record at partition and
// offset: short, stable across redeliveries, and typed easily.
func IDFor(partition int32, offset int64) string {
	return fmt.Sprintf("%d-%d", partition, offset)
}

// Entry is one poisoned message.
type Entry struct {
	// ID is IDFor(Record.Partition, Record.Offset).
	ID string
	// Record is the entry's record on the poison topic.
	Record     Position
	PoisonedAt time.Time
	// Reason is the handler's last error.
	Reason string
	// Origin is where the message was consumed from.
	Origin Position
	// Key is the message's original Kafka key.
	Key       string
	Handler   string
	EventType string
	// MessageID is the Watermill message id (the event id for events).
	MessageID string
	// Metadata is everything the poison record carried: the original headers
	// plus the poison queue's (reason_poisoned, topic_poisoned, ...).
	Metadata map[string]string
	Payload  []byte

	Status Status
	// ChangedAt, ChangedBy and ChangeReason say when the entry was requeued
	// or discarded, by whom and, for a discard, why.
	ChangedAt    time.Time
	ChangedBy    string
	ChangeReason string
	// RequeuedTo is where the requeued message was published.
	RequeuedTo Position
}

// CheckNew returns ErrHandled unless the entry is still new.
func (e Entry) CheckNew() error {
	if e.Status != StatusNew {
		return fmt.Errorf("%w: %s was %s by %s at %s", ErrHandled, e.ID, e.Status, e.ChangedBy, e.ChangedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// MarkRequeued records that the message was published again to `to`.
func (e *Entry) MarkRequeued(to Position, by string, at time.Time) error {
	if err := e.CheckNew(); err != nil {
		return err
	}
	e.Status, e.RequeuedTo = StatusRequeued, to
	e.ChangedAt, e.ChangedBy = at, who(by)
	return nil
}

// MarkDiscarded sets the entry aside for good; the reason is required so
// that whoever looks later knows why the message was never processed.
func (e *Entry) MarkDiscarded(reason, by string, at time.Time) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return ErrReasonRequired
	}
	if err := e.CheckNew(); err != nil {
		return err
	}
	e.Status, e.ChangeReason = StatusDiscarded, reason
	e.ChangedAt, e.ChangedBy = at, who(by)
	return nil
}

func who(by string) string {
	if by = strings.TrimSpace(by); by != "" {
		return by
	}
	return "unknown"
}

// Message is a message to publish: a requeued entry on its way back.
type Message struct {
	Topic string
	// Partition is the partition it must go back to, the one it was
	// consumed from, so that it rejoins the records of its key whichever
	// client produced them and however that client hashes keys; -1 when
	// not known, and then the key decides.
	Partition int32
	Key       string
	ID        string
	Metadata  map[string]string
	Payload   []byte
}
