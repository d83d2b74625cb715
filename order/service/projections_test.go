package service_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// order serve keeps the read models up to date: an order placed over HTTP
// shows up in the order list, and the projector stops with the service.
func TestServeProjectsPlacedOrdersIntoTheList(t *testing.T) {
	r := serve(t)
	base := r.base

	placeOrder(t, base, "erin", 4500)
	testenv.Eventually(t, 60*time.Second, "the order listed", func() bool {
		resp, err := http.Get(base + "/v1/orders?customer_id=erin")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Orders []struct{ Total int64 } `json:"orders"`
		}
		return json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Orders) == 1 && list.Orders[0].Total == 4500
	})

	if err := r.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestProjectorSettingsFromTheEnvironment(t *testing.T) {
	t.Setenv("PROJECTOR_ENABLED", "false")
	t.Setenv("PROJECTOR_POLL_INTERVAL", "50ms")
	cfg, err := service.ConfigFromEnv()
	if err != nil || cfg.Projector.Enabled || cfg.Projector.PollInterval != 50*time.Millisecond || cfg.Projector.BatchSize != 500 {
		t.Errorf("config %+v (%v), want the projector disabled, polling every 50ms, 500 per batch", cfg.Projector, err)
	}
	t.Setenv("PROJECTOR_POLL_INTERVAL", "soon")
	if _, err := service.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "PROJECTOR_POLL_INTERVAL") {
		t.Errorf("PROJECTOR_POLL_INTERVAL=soon: %v, want an error naming it", err)
	}
}
