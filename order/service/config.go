// Package service wires the order service together: configuration, the
// database, the HTTP API and the forwarder.
package service

import (
	"errors"
	"time"

	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/kafka"
)

// Variables are the order service's environment variables.
var Variables = config.Vars{
	{Name: "DATABASE_URL", Default: "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable", Usage: "PostgreSQL database of the order service (event store and outbox)"},
	{Name: "KAFKA_BROKERS", Default: "127.0.0.1:9092", Usage: "comma-separated Kafka bootstrap brokers"},
	{Name: "HTTP_ADDR", Default: "127.0.0.1:8080", Usage: "address of the HTTP API"},
	{Name: "FORWARDER_ENABLED", Default: "true", Usage: "run the forwarder inside `order serve`"},
	{Name: "FORWARDER_POLL_INTERVAL", Default: "20ms", Usage: "how soon the forwarder reads again after finding no new events"},
	{Name: "FORWARDER_BATCH_SIZE", Default: "100", Usage: "events the forwarder reads per query"},
	{Name: "LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error"},
}

// Config is the order service's configuration.
type Config struct {
	DatabaseURL        string
	KafkaBrokers       []string
	HTTPAddr           string
	ForwarderEnabled   bool
	ForwarderPoll      time.Duration
	ForwarderBatchSize int
	LogLevel           string
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	v := Variables
	cfg := Config{
		DatabaseURL:  v.String("DATABASE_URL"),
		KafkaBrokers: kafka.ParseBrokers(v.String("KAFKA_BROKERS")),
		HTTPAddr:     v.String("HTTP_ADDR"),
		LogLevel:     v.String("LOG_LEVEL"),
	}
	var errs [4]error
	cfg.ForwarderEnabled, errs[0] = v.Bool("FORWARDER_ENABLED")
	cfg.ForwarderPoll, errs[1] = v.Duration("FORWARDER_POLL_INTERVAL", false)
	batch, err := v.Int("FORWARDER_BATCH_SIZE", 1)
	cfg.ForwarderBatchSize, errs[2] = int(batch), err
	if len(cfg.KafkaBrokers) == 0 {
		errs[3] = errors.New("KAFKA_BROKERS is empty")
	}
	return cfg, errors.Join(errs[:]...)
}
