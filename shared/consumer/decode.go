package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/contracts"
)

// EventType returns the event type of a message. A message without one
// cannot be handled at all: the error sends it to the poison queue.
func EventType(msg *message.Message) (string, error) {
	t := msg.Metadata.Get(contracts.EventTypeKey)
	if t == "" {
		return "", errors.New("message has no event_type header")
	}
	return t, nil
}

// Decode reads the payload of an event message into T, upcasting older
// schema versions to the current one first. A payload that does not decode,
// or a version this service does not know, is an error a person must look
// at; the message ends in the poison queue with that reason.
func Decode[T any](msg *message.Message, currentVersion int) (T, error) {
	var v T
	eventType := msg.Metadata.Get(contracts.EventTypeKey)
	version, err := strconv.Atoi(msg.Metadata.Get(contracts.SchemaVersionKey))
	if err != nil {
		return v, fmt.Errorf("%s has no valid schema_version header (%q)", eventType, msg.Metadata.Get(contracts.SchemaVersionKey))
	}
	payload, version, err := contracts.Upcast(eventType, version, msg.Payload)
	if err != nil {
		return v, err
	}
	if version != currentVersion {
		return v, fmt.Errorf("%s schema version %d is not supported (this service reads up to %d)", eventType, version, currentVersion)
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return v, fmt.Errorf("%s payload is not valid: %w", eventType, err)
	}
	return v, nil
}
