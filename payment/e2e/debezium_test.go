package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/kafkaconnect"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// TestDebeziumRelay runs the order service without its forwarder and relays
// its event store with Debezium instead, exactly as configured in
// deployments/debezium/ (Kafka Connect standalone, the outbox event
// router): the payment service must charge (or decline) each order from
// what Debezium puts on order.events, with the request's correlation id,
// and its outcome must come back to the order. It needs a PostgreSQL server
// with wal_level=logical and the real Kafka cluster: task
// debezium-check.
func TestDebeziumRelay(t *testing.T) {
	if testenv.ServerURL() == testenv.DefaultDatabaseURL || os.Getenv("TEST_KAFKA_CLUSTER") == "" {
		t.Skip("needs a PostgreSQL server with wal_level=logical and the real Kafka cluster: run task debezium-check")
	}
	s := startWith(t, []string{"FORWARDER_ENABLED=false"})
	startDebezium(t, s.orderDB, s.brokers)

	approved := s.place(t, 4_500)
	declined := s.place(t, 50_000)
	s.waitForStatus(t, approved, "paid")
	s.waitForStatus(t, declined, "payment_failed")

	var correlation string
	_ = s.paymentPool.QueryRow(context.Background(), `SELECT correlation_id FROM events WHERE stream_id = $1 ORDER BY stream_version LIMIT 1`,
		adapters.StreamID(approved)).Scan(&correlation)
	if correlation != "e2e-4500" {
		t.Errorf("payment events carry correlation id %q, want the request's e2e-4500", correlation)
	}

	// What Debezium produced: the forwarder's topic, key and headers; the
	// trace context only inside the metadata header.
	records := testenv.Records(t, s.brokers, "order.events", 2+2, 30*time.Second)
	for _, r := range records {
		id := testenv.Header(r, "stream_id")
		if string(r.Key) != id || !strings.HasPrefix(id, "order-") {
			t.Errorf("record key %q, stream_id header %q: want the stream id as key", r.Key, id)
		}
		for _, h := range []string{"_watermill_message_uuid", "event_id", "event_type", "schema_version", "stream_version", "correlation_id"} {
			if testenv.Header(r, h) == "" {
				t.Errorf("record of %s lacks the %s header: %v", id, h, r.Headers)
			}
		}
		if testenv.Header(r, "traceparent") != "" || !strings.Contains(testenv.Header(r, "metadata"), `"traceparent"`) {
			t.Errorf("record of %s: want the trace context in the metadata header only, got headers %v", id, r.Headers)
		}
	}
	if got := testenv.Header(records[0], "event_type"); got != contracts.OrderPlacedType {
		t.Errorf("first record is a %s, want %s", got, contracts.OrderPlacedType)
	}
}

// startDebezium runs deployments/debezium/ on the order database at url,
// with only the database, slot, publication and ports replaced, until the
// test ends; then it drops the slot (before the database goes).
func startDebezium(t *testing.T, url string, brokers []string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	slot := "debezium_" + cfg.Database
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join("..", "..", "deployments", "debezium")
	w, err := kafkaconnect.Start(ctx, kafkaconnect.Config{
		Dir:       t.TempDir(),
		Worker:    filepath.Join(dir, "worker.properties"),
		Connector: filepath.Join(dir, "order-events.properties"),
		Brokers:   brokers,
		ConnectorSettings: map[string]string{
			"database.hostname": cfg.Host, "database.port": itoa(cfg.Port), "database.user": cfg.User,
			"database.dbname": cfg.Database, "slot.name": slot, "publication.name": slot, "topic.prefix": slot,
		},
		Log: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		testenv.Eventually(t, 30*time.Second, "slot "+slot+" dropped", func() bool {
			_, err := conn.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot)
			return err == nil
		})
	})
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }
