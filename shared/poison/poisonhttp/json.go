package poisonhttp

import (
	"fmt"
	"time"

	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
)

// PoisonEntryJSON is a poison-queue entry as the HTTP API and the CLI's
// --json show it. The payload is text; bytes that are not UTF-8 show as
// U+FFFD here, but are kept and requeued exactly.
type PoisonEntryJSON struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	PoisonedAt time.Time `json:"poisoned_at"`
	Reason     string    `json:"reason"`
	// Origin is where the message was consumed from.
	Origin    PositionJSON `json:"origin"`
	Key       string       `json:"key"`
	Handler   string       `json:"handler"`
	EventType string       `json:"event_type"`
	MessageID string       `json:"message_id"`
	// PoisonRecord is the entry's record on the poison topic.
	PoisonRecord PositionJSON      `json:"poison_record"`
	Metadata     map[string]string `json:"metadata"`
	Payload      string            `json:"payload"`
	ChangedAt    *time.Time        `json:"changed_at,omitempty"`
	ChangedBy    string            `json:"changed_by,omitempty"`
	ChangeReason string            `json:"change_reason,omitempty"`
	RequeuedTo   *PositionJSON     `json:"requeued_to,omitempty"`
}

// PositionJSON is a Kafka position; partition and offset are null when unknown.
type PositionJSON struct {
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
	Offset    *int64 `json:"offset"`
}

// String is "topic partition/offset", or the topic alone while unknown.
func (p PositionJSON) String() string {
	if p.Partition == nil || p.Offset == nil {
		return p.Topic
	}
	return fmt.Sprintf("%s %d/%d", p.Topic, *p.Partition, *p.Offset)
}

// OutcomeJSON is what a requeue or discard did to one entry.
type OutcomeJSON struct {
	ID     string          `json:"id"`
	Result string          `json:"result"`
	Entry  PoisonEntryJSON `json:"entry"`
}

// NewPoisonEntryJSON returns e as JSON.
func NewPoisonEntryJSON(e poison.Entry) PoisonEntryJSON {
	j := PoisonEntryJSON{
		ID: e.ID, Status: string(e.Status), PoisonedAt: e.PoisonedAt.UTC(), Reason: e.Reason,
		Origin: positionJSON(e.Origin), Key: e.Key, Handler: e.Handler, EventType: e.EventType, MessageID: e.MessageID,
		PoisonRecord: positionJSON(e.Record), Metadata: e.Metadata, Payload: string(e.Payload),
		ChangedBy: e.ChangedBy, ChangeReason: e.ChangeReason,
	}
	if !e.ChangedAt.IsZero() {
		at := e.ChangedAt.UTC()
		j.ChangedAt = &at
	}
	if e.RequeuedTo.Topic != "" {
		to := positionJSON(e.RequeuedTo)
		j.RequeuedTo = &to
	}
	return j
}

// NewOutcomeJSON returns o as JSON.
func NewOutcomeJSON(o poisonapp.Outcome) OutcomeJSON {
	return OutcomeJSON{ID: o.Entry.ID, Result: string(o.Result), Entry: NewPoisonEntryJSON(o.Entry)}
}

func positionJSON(p poison.Position) PositionJSON {
	j := PositionJSON{Topic: p.Topic}
	if p.Partition >= 0 && p.Offset >= 0 {
		j.Partition, j.Offset = &p.Partition, &p.Offset
	}
	return j
}
