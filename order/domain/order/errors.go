package order

import (
	"errors"
	"fmt"
)

// ErrNotFound means there is no order with the given id.
var ErrNotFound = errors.New("order not found")

// ValidationError says which field of a command is wrong and why. Field uses
// the JSON names of the HTTP API, with indexes: "items[2].quantity".
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// TransitionError means the command does not apply to the order in its
// current status (cancelling a cancelled order, for example).
type TransitionError struct {
	OrderID string
	Status  Status
	Message string
}

func (e *TransitionError) Error() string { return e.Message }
