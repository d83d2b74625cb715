package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// The node that coordinates the payment consumer group is killed -9 while
// the service consumes orders; the group's offsets move to another replica
// of __consumer_offsets, the service finds the new coordinator and goes on,
// and the node comes back 5 s later. Every order is charged exactly once:
// one charge in the gateway's ledger and a payment stream of two events.
// Only a replicated cluster has a coordinator to lose (testenv.KafkaCluster
// skips this, saying so, on the development broker).
func TestCoordinatorKilledWhileConsumingChargesEveryOrderOnce(t *testing.T) {
	e := start(t, 3)
	c := testenv.KafkaCluster(t)
	var orders []string
	place := func(n int) {
		for range n {
			id, payload, headers := orderPlaced(t, 1_000)
			e.produce(t, "order-"+id, payload, headers)
			orders = append(orders, id)
		}
	}
	place(10)
	testenv.Eventually(t, 60*time.Second, "the first order charged", func() bool { return len(e.paymentEvents(t, orders[0])) == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coordinator, err := c.Coordinator(ctx, contracts.PaymentGroup)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(coordinator); err != nil {
		t.Fatal(err)
	}
	place(40)                   // while the group has no coordinator
	time.Sleep(5 * time.Second) // the node stays down a while, as a crashed machine would
	if err := c.StartNode(coordinator); err != nil {
		t.Fatal(err)
	}
	place(10)

	testenv.Eventually(t, 2*time.Minute, "every order charged", func() bool {
		for _, id := range orders {
			if len(e.paymentEvents(t, id)) < 2 {
				return false
			}
		}
		return true
	})
	for _, id := range orders {
		var charges int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, id).Scan(&charges); err != nil {
			t.Fatal(err)
		}
		if got := e.paymentEvents(t, id); charges != 1 || len(got) != 2 {
			t.Errorf("order %s: %d charges in the ledger, payment stream %v; want one charge and two events", id, charges, got)
		}
	}
	t.Logf("coordinator node %d killed; %d orders charged once each, %d gateway calls", coordinator, len(orders), e.svc.Gateway.Calls())
}
