// Package poisonstore keeps a service's poison queue in its PostgreSQL
// database (table poison_messages).
package poisonstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the poison_messages table. The payment service created
// it with its own migrations before the poison queue was shared; this set
// creates it only where it is missing.
var Migrations = postgres.NewMigration(migrationFiles, "migrations", "poison_schema_version")

// Store keeps the poison queue's entries in PostgreSQL (table
// poison_messages), for the consumer that fills it, the CLI and the HTTP API.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns the store in pool's database.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// Add stores a new entry unless its poison-topic record is stored already (a
// redelivery), and reports whether it did.
func (s *Store) Add(ctx context.Context, e poison.Entry) (added bool, err error) {
	metadata, err := json.Marshal(pgTextMap(e.Metadata))
	if err != nil {
		return false, fmt.Errorf("poison store: entry %s metadata: %w", e.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO poison_messages (poison_topic, poison_partition, poison_offset, poisoned_at, reason,
			origin_topic, origin_partition, origin_offset, key, handler, event_type, message_id, metadata, payload)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (poison_partition, poison_offset) DO NOTHING`,
		pgText(e.Record.Topic), e.Record.Partition, e.Record.Offset, e.PoisonedAt, pgText(e.Reason),
		pgText(e.Origin.Topic), unknownAsNull(e.Origin.Partition), unknownAsNull(e.Origin.Offset), []byte(e.Key),
		pgText(e.Handler), pgText(e.EventType), pgText(e.MessageID), metadata, e.Payload)
	if err != nil {
		return false, fmt.Errorf("poison store: add %s: %w", e.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// List returns the entries with the status, or all if status is "", oldest first.
func (s *Store) List(ctx context.Context, status poison.Status) ([]poison.Entry, error) {
	rows, err := s.pool.Query(ctx, selectEntries+`
		WHERE $1 = '' OR status = $1 ORDER BY poisoned_at, poison_partition, poison_offset`, string(status))
	if err != nil {
		return nil, fmt.Errorf("poison store: list: %w", err)
	}
	entries, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return nil, fmt.Errorf("poison store: list: %w", err)
	}
	return entries, nil
}

// Get returns the entry with the id, or poison.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (poison.Entry, error) {
	return get(ctx, s.pool, id)
}

// Depth counts the entries still new: the messages nobody has handled yet.
func (s *Store) Depth(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM poison_messages WHERE status = 'new'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("poison store: depth: %w", err)
	}
	return n, nil
}

// Update loads entry id, lets change handle it and stores its new status,
// while the entry is locked against every other Update: two people
// requeueing the same entry at once publish it once, and a discard cannot
// slip in while a requeue publishes. If change fails, nothing is stored and
// the entry is returned as loaded, with change's error.
//
// The lock is a session advisory lock, not a row lock: change may wait on a
// Kafka round trip, and a write transaction kept open that long would hold
// back every event-store reader on the server, since they read only below the
// oldest open transaction id.
func (s *Store) Update(ctx context.Context, id string, change func(context.Context, *poison.Entry) error) (poison.Entry, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return poison.Entry{}, fmt.Errorf("poison store: %w", err)
	}
	defer conn.Release()
	const lockArgs = `('poison_messages'::regclass::oid::integer, hashtext($1))`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock`+lockArgs, id); err != nil {
		return poison.Entry{}, fmt.Errorf("poison store: lock %s: %w", id, err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock`+lockArgs, id); err != nil {
			// The session may still hold the lock: end it rather than pool it.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	loaded, err := get(ctx, conn, id)
	if err != nil {
		return loaded, err
	}
	e := loaded
	if err := change(ctx, &e); err != nil {
		return loaded, err
	}
	toTopic, toPartition, toOffset := positionColumns(e.RequeuedTo)
	tag, err := conn.Exec(ctx, `
		UPDATE poison_messages SET status = $2, changed_at = $3, changed_by = $4, change_reason = $5,
			requeued_to_topic = $6, requeued_to_partition = $7, requeued_to_offset = $8
		WHERE id = $1 AND status = 'new'`,
		id, string(e.Status), e.ChangedAt, pgText(e.ChangedBy), nullIfEmpty(pgText(e.ChangeReason)),
		toTopic, toPartition, toOffset)
	if err != nil {
		return loaded, fmt.Errorf("poison store: update %s: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return loaded, fmt.Errorf("poison store: %s was changed by a writer that did not take its lock", id)
	}
	return e, nil
}

const selectEntries = `
	SELECT id, poison_topic, poison_partition, poison_offset, poisoned_at, reason,
		origin_topic, coalesce(origin_partition, -1), coalesce(origin_offset, -1), key, handler, event_type,
		message_id, metadata, payload, status, changed_at, coalesce(changed_by, ''), coalesce(change_reason, ''),
		coalesce(requeued_to_topic, ''), coalesce(requeued_to_partition, -1), coalesce(requeued_to_offset, -1)
	FROM poison_messages`

// querier is a pool or one of its connections.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func get(ctx context.Context, q querier, id string) (poison.Entry, error) {
	rows, err := q.Query(ctx, selectEntries+` WHERE id = $1`, id)
	if err != nil {
		return poison.Entry{}, fmt.Errorf("poison store: get %s: %w", id, err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEntry)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("%w: %s", poison.ErrNotFound, id)
	}
	if err != nil {
		return e, fmt.Errorf("poison store: get %s: %w", id, err)
	}
	return e, nil
}

func scanEntry(row pgx.CollectableRow) (poison.Entry, error) {
	var (
		e         poison.Entry
		key       []byte
		status    string
		changedAt *time.Time
	)
	err := row.Scan(&e.ID, &e.Record.Topic, &e.Record.Partition, &e.Record.Offset, &e.PoisonedAt, &e.Reason,
		&e.Origin.Topic, &e.Origin.Partition, &e.Origin.Offset, &key, &e.Handler, &e.EventType,
		&e.MessageID, &e.Metadata, &e.Payload, &status, &changedAt, &e.ChangedBy, &e.ChangeReason,
		&e.RequeuedTo.Topic, &e.RequeuedTo.Partition, &e.RequeuedTo.Offset)
	e.Key, e.Status = string(key), poison.Status(status)
	if changedAt != nil {
		e.ChangedAt = *changedAt
	}
	return e, err
}

// pgText makes s storable as PostgreSQL text, which takes neither NUL bytes
// nor invalid UTF-8: a header the store cannot take would otherwise stop the
// poison-queue consumer for good. Key and payload are stored as bytes, exactly.
func pgText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func pgTextMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[pgText(k)] = pgText(v)
	}
	return out
}

// unknownAsNull stores an unknown (-1) partition or offset as NULL.
func unknownAsNull[T int32 | int64](n T) *T {
	if n < 0 {
		return nil
	}
	return &n
}

// positionColumns stores a position, NULLs if there is none (no topic).
func positionColumns(p poison.Position) (topic *string, partition *int32, offset *int64) {
	if p.Topic == "" {
		return nil, nil, nil
	}
	t := pgText(p.Topic)
	return &t, unknownAsNull(p.Partition), unknownAsNull(p.Offset)
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
