package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
)

// The order service has the payment service's poison queue, on order.poison:
// a payment outcome it cannot read is retried, poisoned, kept in its store,
// counted in order_poison_queue_depth, and listed and requeued through
// /v1/admin/poison behind ORDER_ADMIN_TOKEN, back to the partition of
// payment.events it came from.
func TestOrderPoisonQueue(t *testing.T) {
	const token = "order-admin-token"
	ctx := context.Background()
	r := serve(t, func(cfg *service.Config) { cfg.AdminToken = token })

	producer, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	key := "payment-" + uuid.NewString()
	rec := &kgo.Record{Topic: contracts.PaymentEventsTopic, Partition: 3, Key: []byte(key), Value: []byte(`{"order_id": 42}`),
		Headers: []kgo.RecordHeader{{Key: "event_type", Value: []byte(contracts.PaymentSucceededType)}, {Key: "schema_version", Value: []byte("1")},
			{Key: "event_id", Value: []byte(uuid.NewString())}}}
	if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	auth := "Bearer " + token
	var list struct {
		Entries []poisonhttp.PoisonEntryJSON `json:"entries"`
	}
	testenv.Eventually(t, 30*time.Second, "the outcome in the order poison queue", func() bool {
		return testenv.DoJSON(t, http.MethodGet, r.base+"/v1/admin/poison", auth, "", &list) == http.StatusOK && len(list.Entries) == 1
	})
	e := list.Entries[0]
	if e.Origin.Topic != contracts.PaymentEventsTopic || *e.Origin.Partition != 3 || e.Key != key || e.Handler != "apply_payment_outcome" ||
		e.PoisonRecord.Topic != contracts.OrderPoisonTopic || !strings.Contains(e.Reason, "payload is not valid") {
		t.Errorf("poison entry %+v, want the outcome from payment.events 3 on order.poison with its reason", e)
	}
	if !strings.Contains(metrics(t, r.base), "order_poison_queue_depth 1\n") {
		t.Errorf("/metrics lacks order_poison_queue_depth 1")
	}
	var refused testenv.APIError
	if status := testenv.DoJSON(t, http.MethodGet, r.base+"/v1/admin/poison", "Bearer wrong", "", &refused); status != http.StatusUnauthorized {
		t.Errorf("a wrong token = %d, want 401", status)
	}

	var outcome poisonhttp.OutcomeJSON
	if status := testenv.DoJSON(t, http.MethodPost, r.base+"/v1/admin/poison/"+e.ID+"/requeue", auth, `{"by": "ann"}`, &outcome); status != http.StatusOK ||
		outcome.Result != "requeued" || outcome.Entry.RequeuedTo.Topic != contracts.PaymentEventsTopic || *outcome.Entry.RequeuedTo.Partition != 3 {
		t.Fatalf("requeue = %d %+v, want requeued to payment.events partition 3", status, outcome)
	}
	testenv.Eventually(t, 30*time.Second, "the requeued outcome poisoned again (it is still unreadable)", func() bool {
		return testenv.DoJSON(t, http.MethodGet, r.base+"/v1/admin/poison", auth, "", &list) == http.StatusOK && len(list.Entries) == 1 &&
			list.Entries[0].ID != e.ID
	})
}

// metrics is the service's /metrics page.
func metrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return b.String()
}
