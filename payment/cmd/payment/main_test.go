package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/testenv"
)

func TestPoisonListPrintsWhatIsInTheQueue(t *testing.T) {
	brokers := testenv.Kafka(t)
	t.Setenv("KAFKA_BROKERS", brokers[0])

	var out bytes.Buffer
	if err := run([]string{"poison", "list"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "empty") {
		t.Errorf("empty queue printed %q", out.String())
	}

	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	headers := map[string]string{
		"reason_poisoned": "order.OrderPlaced payload is not valid: unexpected end of JSON input",
		"topic_poisoned":  "order.events", "partition_poisoned": "2", "offset_poisoned": "7",
		"event_type": "order.OrderPlaced", "poisoned_at": "2026-11-27T10:00:00Z",
	}
	rec := &kgo.Record{Topic: "payment.poison", Key: []byte("order-broken"), Value: []byte(`{"order_id": "bro`)}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if err := client.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := run([]string{"poison", "list"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"order.events 2/7", "order.OrderPlaced", "order-broken", "unexpected end of JSON input", `{"order_id": "bro`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("poison list lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := run([]string{"poison", "list", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Key      string            `json:"key"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m.Key != "order-broken" || m.Metadata["offset_poisoned"] != "7" {
		t.Errorf("--json printed %q (%v)", out.String(), err)
	}
}

func TestCommandErrors(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:1") // nothing listens there
	cases := map[string][]string{
		"unknown command":     {"frobnicate"},
		"poison without verb": {"poison"},
		"bad flag":            {"poison", "list", "--colour"},
		"no broker":           {"poison", "list"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			err := run(args, &bytes.Buffer{})
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("run(%v) = %v, want one line of error", args, err)
			}
		})
	}
}
