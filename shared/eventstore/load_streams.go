package eventstore

import (
	"context"
	"fmt"
)

// LoadStreams returns the events of several streams in one query, keyed by
// stream id, each stream in version order; streams without events are
// absent. Readers that need the state of every stream a batch of events
// touched (projections) use it instead of one Load per stream.
func LoadStreams(ctx context.Context, db DB, streamIDs []string) (map[string][]RecordedEvent, error) {
	events, err := query(ctx, db, selectEvents+` WHERE stream_id = ANY($1) ORDER BY stream_id, stream_version`, PlanEveryRun, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("eventstore: load %d streams: %w", len(streamIDs), err)
	}
	streams := make(map[string][]RecordedEvent, len(streamIDs))
	for _, e := range events {
		streams[e.StreamID] = append(streams[e.StreamID], e)
	}
	return streams, nil
}
