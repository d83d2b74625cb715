package outbox

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// With both intervals an hour long, only a notification (or the stop) ends
// the wait after an empty read.
func TestNotificationEndsTheWait(t *testing.T) {
	w := newWakeUp(time.Hour, time.Hour, time.Second)
	waited := make(chan struct{})
	go func() {
		w.HandleError(watermill.NopLogger{}, true, nil)
		close(waited)
	}()
	w.notify()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a notification did not end the wait")
	}
}
