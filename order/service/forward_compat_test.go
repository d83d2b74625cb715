package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// A newer version of the service (in a rolling deploy) appends events this
// code does not know: a new type to an order, a newer schema version of a
// known type to another, and a stream of a kind it has never seen. The
// projections pass over them, count them and reach lag 0; every other order
// is served as before; the orders that hold them cannot be loaded here, so a
// command on them is a 503 that changes nothing.
func TestEventsOfANewerVersionAreSkippedByProjectionsAndRefusedByCommands(t *testing.T) {
	ctx := context.Background()
	r := serve(t)
	svc, pool, base := r.svc, r.pool, r.base
	shipped, newerPaid, plain := placeOrder(t, base, "fay", 4500), placeOrder(t, base, "fay", 4500), placeOrder(t, base, "fay", 4500)
	for stream, e := range map[string]eventstore.Event{
		adapters.StreamID(shipped):   {ID: uuid.NewString(), Type: "order.OrderShipped", SchemaVersion: 1, Payload: []byte(`{"carrier":"owl"}`)},
		adapters.StreamID(newerPaid): {ID: uuid.NewString(), Type: "order.OrderPaid", SchemaVersion: 99, Payload: []byte(`{"charges":[]}`)},
	} {
		if err := eventstore.Append(ctx, pool, stream, 1, eventstore.Context{}, e); err != nil {
			t.Fatal(err)
		}
	}
	gift := eventstore.Event{ID: uuid.NewString(), Type: "gift.GiftCardIssued", SchemaVersion: 1, Payload: []byte(`{"amount":5}`)}
	if err := eventstore.Append(ctx, pool, "gift-"+uuid.NewString(), 0, eventstore.Context{}, gift); err != nil {
		t.Fatal(err)
	}
	// A newer replica goes on with the order it shipped; and an order
	// changed here after them is projected too: nothing stalls.
	paid := eventstore.Event{ID: uuid.NewString(), Type: "order.OrderPaid", SchemaVersion: 1,
		Payload: []byte(`{"order_id":"` + shipped + `","charge_id":"ch-9","amount":4500,"at":"2026-12-01T10:00:00Z"}`)}
	if err := eventstore.Append(ctx, pool, adapters.StreamID(shipped), 2, eventstore.Context{}, paid); err != nil {
		t.Fatal(err)
	}
	if status, body := call(t, "POST", base+"/v1/orders/"+plain+"/cancel", ""); status != http.StatusOK {
		t.Fatalf("cancel an order without unknown events = %d %s", status, body)
	}

	// Lag 0 alone is not enough: the lag counts only the events readers may
	// read yet, and a transaction held open elsewhere on the server (another
	// test's) hides the newest ones for a while. So wait for the skipped
	// counts too, and report what was there if they never come.
	const want = "gift.GiftCardIssued v1: 1 events; order.OrderPaid v99: 1 events; order.OrderShipped v1: 1 events"
	skipped := func(s projections.Status) string {
		var got []string
		for _, k := range s.Skipped {
			got = append(got, k.String())
		}
		return strings.Join(got, "; ")
	}
	var statuses []projections.Status
	testenv.Eventually(t, 2*time.Minute, "both projections at lag 0 with "+want+" skipped", func() bool {
		var err error
		if statuses, err = svc.ProjectionStatuses(ctx); err != nil {
			t.Fatal(err)
		}
		done := true
		for _, s := range statuses {
			done = done && s.LagEvents == 0 && skipped(s) == want
		}
		return done
	})
	for _, s := range statuses {
		if got := skipped(s); got != want || s.LagEvents != 0 || s.LastError != "" {
			t.Errorf("%s at lag %d skipped %q (last error %q), want lag 0, %q and no error", s.Name, s.LagEvents, got, s.LastError, want)
		}
	}
	status, body := call(t, "GET", base+"/v1/orders?customer_id=fay", "")
	var list struct {
		Orders []struct {
			OrderID string `json:"order_id"`
			Status  string `json:"status"`
			Version int64  `json:"version"`
		} `json:"orders"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Orders) != 3 {
		t.Fatalf("GET /v1/orders = %d %s, want the three orders", status, body)
	}
	for _, o := range list.Orders {
		want := map[string]string{shipped: "paid 3", newerPaid: "placed 2", plain: "cancelled 2"}[o.OrderID]
		if got := o.Status + " " + string(rune('0'+o.Version)); got != want {
			t.Errorf("order %s listed as %s, want %s (the stream's version)", o.OrderID, got, want)
		}
	}
	metrics := func() string { _, m := call(t, "GET", base+"/metrics", ""); return m }()
	if want := `projection_skipped_events{event_type="order.OrderShipped",projection="order_summaries",schema_version="1"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}

	// The orders that hold them: reading or changing one is a 503 naming
	// the cause, and appends nothing; the other orders are served.
	for _, id := range []string{shipped, newerPaid} {
		for _, c := range [][2]string{{"GET", "/v1/orders/" + id}, {"POST", "/v1/orders/" + id + "/cancel"}} {
			if status, body := call(t, c[0], base+c[1], ""); status != http.StatusServiceUnavailable || !strings.Contains(body, `"newer_version"`) {
				t.Errorf("%s %s = %d %s, want 503 newer_version", c[0], c[1], status, body)
			}
		}
		var events int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1`, adapters.StreamID(id)).Scan(&events)
		if want := map[string]int{shipped: 3, newerPaid: 2}[id]; events != want {
			t.Errorf("order %s has %d events after the refused commands, want %d", id, events, want)
		}
	}
	if status, body := call(t, "GET", base+"/v1/orders/"+plain, ""); status != http.StatusOK || !strings.Contains(body, `"cancelled"`) {
		t.Errorf("GET the other order = %d %s, want it cancelled", status, body)
	}
}
