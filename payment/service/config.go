// Package service wires the payment service together: configuration, the
// database, the Kafka router and the forwarder of payment events.
package service

import (
	"errors"
	"time"

	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/kafka"
)

// Variables are the payment service's environment variables.
var Variables = config.Vars{
	{Name: "DATABASE_URL", Default: "postgres://postgres@127.0.0.1:5432/payments?sslmode=disable", Usage: "PostgreSQL database of the payment service (payment events and outbox)"},
	{Name: "KAFKA_BROKERS", Default: "127.0.0.1:9092", Usage: "comma-separated Kafka bootstrap brokers"},
	{Name: "PAYMENT_MAX_RETRIES", Default: "3", Usage: "retries of a failing message before it goes to the poison queue"},
	{Name: "PAYMENT_RETRY_INTERVAL", Default: "100ms", Usage: "first wait between retries; doubles each retry"},
	{Name: "GATEWAY_APPROVE_LIMIT", Default: "100000", Usage: "the simulated gateway approves charges up to this amount in minor units and declines larger ones"},
	{Name: "GATEWAY_TRANSIENT_FAILURE_RATE", Default: "0", Usage: "chance from 0 to 1 that a gateway call fails transiently (to see retries)"},
	{Name: "GATEWAY_LATENCY", Default: "0s", Usage: "delay added to every gateway call"},
	{Name: "FORWARDER_ENABLED", Default: "true", Usage: "run the forwarder of payment events inside `payment serve`"},
	{Name: "FORWARDER_POLL_INTERVAL", Default: "20ms", Usage: "how soon the forwarder reads again after finding no new events"},
	{Name: "FORWARDER_BATCH_SIZE", Default: "100", Usage: "events the forwarder reads per query"},
	{Name: "LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error"},
}

// Config is the payment service's configuration.
type Config struct {
	DatabaseURL          string
	KafkaBrokers         []string
	MaxRetries           int
	RetryInterval        time.Duration
	ApproveLimit         int64
	TransientFailureRate float64
	GatewayLatency       time.Duration
	ForwarderEnabled     bool
	ForwarderPoll        time.Duration
	ForwarderBatchSize   int
	LogLevel             string
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	v := Variables
	cfg := Config{
		DatabaseURL:  v.String("DATABASE_URL"),
		KafkaBrokers: kafka.ParseBrokers(v.String("KAFKA_BROKERS")),
		LogLevel:     v.String("LOG_LEVEL"),
	}
	var errs [9]error
	retries, err := v.Int("PAYMENT_MAX_RETRIES", 0)
	cfg.MaxRetries, errs[0] = int(retries), err
	cfg.RetryInterval, errs[1] = v.Duration("PAYMENT_RETRY_INTERVAL", false)
	cfg.ApproveLimit, errs[2] = v.Int("GATEWAY_APPROVE_LIMIT", 0)
	cfg.TransientFailureRate, errs[3] = v.Float("GATEWAY_TRANSIENT_FAILURE_RATE", 0, 1)
	cfg.GatewayLatency, errs[4] = v.Duration("GATEWAY_LATENCY", true)
	cfg.ForwarderEnabled, errs[5] = v.Bool("FORWARDER_ENABLED")
	cfg.ForwarderPoll, errs[6] = v.Duration("FORWARDER_POLL_INTERVAL", false)
	batch, err := v.Int("FORWARDER_BATCH_SIZE", 1)
	cfg.ForwarderBatchSize, errs[7] = int(batch), err
	if len(cfg.KafkaBrokers) == 0 {
		errs[8] = errors.New("KAFKA_BROKERS is empty")
	}
	return cfg, errors.Join(errs[:]...)
}
