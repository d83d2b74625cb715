// Package chaos is the fault-injection suite: it runs the real binaries (two
// replicas each of order and payment, the development broker) on fresh
// databases, drives a bounded load of orders over HTTP while it crashes and
// restarts processes and the broker, and then checks the whole history in
// the databases and in Kafka. It never imports a service: it only knows what
// a user or an operator sees (HTTP, tables, topics), so it tests the system
// as deployed rather than as wired in a test.
package chaos

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
)

// Binaries are the programs under test, built beforehand.
type Binaries struct {
	Order, Payment, DevKafka string
}

// Config bounds a run: how many orders, how fast, and which faults.
type Config struct {
	Bins Binaries
	// ServerURL is the PostgreSQL server the run creates its two databases
	// on (any database name; it is replaced).
	ServerURL string
	// WorkDir holds the broker's data directory and the processes' logs.
	WorkDir string
	// Orders is how many orders the load places, one every Interval.
	Orders   int
	Interval time.Duration
	// Kafka is DevKafka (the development broker, one process) or Apache (a
	// real Apache Kafka cluster of 3 nodes, started in WorkDir).
	Kafka string
	// Cluster, if set, is a running Apache cluster to use (with the project's
	// topics) instead of starting one; the run kills and restarts its nodes
	// but leaves it running.
	Cluster *kafkacluster.Cluster
	// OrderKills and PaymentKills are how many kill -9 of a random replica
	// of each service the controller injects; BrokerStops how many times it
	// stops the broker (alternately SIGTERM and SIGKILL) for BrokerDowntime.
	// On the Apache cluster a broker stop is a kill -9 of the node that leads
	// a partition of order.events or payment.events.
	OrderKills, PaymentKills, BrokerStops int
	BrokerDowntime                        time.Duration
	// Faults only the Apache cluster has: a rolling restart (each node
	// stopped, started and caught up in turn), and a majority of the nodes
	// killed at once (below min.insync.replicas: no write can succeed) for
	// BrokerDowntime.
	RollingRestarts, MajorityOutages int
	// RestartPostgres restarts the whole PostgreSQL cluster once under load
	// with PostgresRestartCommand. It disturbs every other user of the
	// server, so it is off unless asked for.
	RestartPostgres        bool
	PostgresRestartCommand []string
	// QuiesceTimeout bounds the wait for every order to settle after the
	// last fault.
	QuiesceTimeout time.Duration
	// LogLevel is the services' LOG_LEVEL; debug adds Sarama's own log of
	// group joins and claims, which is what a stalled group needs.
	LogLevel string
	// Seed makes the fault schedule reproducible.
	Seed int64
	// Log receives progress lines.
	Log io.Writer
}

// The brokers a run can use.
const (
	DevKafka = "dev"
	Apache   = "apache"
)

// DefaultPostgresRestart is how a Debian machine restarts its cluster
// without systemd.
var DefaultPostgresRestart = []string{"pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"}

func (c *Config) validate() error {
	if c.Cluster != nil {
		c.Kafka = Apache
	}
	if c.Kafka == "" {
		c.Kafka = DevKafka
	}
	switch {
	case c.Bins.Order == "" || c.Bins.Payment == "":
		return errors.New("chaos: the order and payment binaries are required")
	case c.Kafka == DevKafka && c.Bins.DevKafka == "":
		return errors.New("chaos: the devkafka binary is required")
	case c.Kafka != DevKafka && c.Kafka != Apache:
		return fmt.Errorf("chaos: Kafka %q: %q or %q", c.Kafka, DevKafka, Apache)
	case c.Kafka == DevKafka && (c.RollingRestarts > 0 || c.MajorityOutages > 0):
		return errors.New("chaos: rolling restarts and majority outages need the Apache cluster")
	case c.ServerURL == "" || c.WorkDir == "":
		return errors.New("chaos: ServerURL and WorkDir are required")
	case c.Orders <= 0 || c.Interval <= 0:
		return errors.New("chaos: Orders and Interval must be positive")
	case c.QuiesceTimeout <= 0:
		return errors.New("chaos: QuiesceTimeout must be positive")
	}
	if c.RestartPostgres && len(c.PostgresRestartCommand) == 0 {
		c.PostgresRestartCommand = DefaultPostgresRestart
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}
