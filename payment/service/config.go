// Package service wires the payment service together: configuration, the
// database, the Kafka router, the HTTP API and the forwarder of payment events.
package service

import (
	"errors"
	"slices"
	"time"

	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/outbox"
)

// Variables are the payment service's environment variables.
var Variables = slices.Concat(
	config.Common("postgres://postgres@127.0.0.1:5432/payments?sslmode=disable", "PostgreSQL database of the payment service (payment events, outbox, poison store)"),
	config.Vars{
		{Name: "PAYMENT_HTTP_ADDR", Default: "127.0.0.1:8081", Usage: "address of the HTTP API: /livez, /metrics and the poison-queue admin endpoints"},
		{Name: "PAYMENT_ADMIN_TOKEN", Default: "", Usage: "bearer token the /v1/admin endpoints require; empty disables them"},
		{Name: "PAYMENT_MAX_RETRIES", Default: "3", Usage: "retries of a failing message before it goes to the poison queue"},
		{Name: "PAYMENT_RETRY_INTERVAL", Default: "100ms", Usage: "first wait between retries; doubles each retry"},
		{Name: "GATEWAY_APPROVE_LIMIT", Default: "100000", Usage: "the simulated gateway approves charges up to this amount in minor units and declines larger ones"},
		{Name: "GATEWAY_TRANSIENT_FAILURE_RATE", Default: "0", Usage: "chance from 0 to 1 that a gateway call fails transiently (to see retries)"},
		{Name: "GATEWAY_LATENCY", Default: "0s", Usage: "delay added to every gateway call"},
	},
	outbox.Variables,
)

// Config is the payment service's configuration.
type Config struct {
	config.Service
	HTTPAddr string
	// AdminToken guards the admin endpoints; empty disables them.
	AdminToken           string
	MaxRetries           int
	RetryInterval        time.Duration
	ApproveLimit         int64
	TransientFailureRate float64
	GatewayLatency       time.Duration
	Forwarder            outbox.Settings
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	v := Variables
	var (
		cfg  Config
		errs [7]error
	)
	cfg.Service, errs[0] = v.Service()
	cfg.HTTPAddr, cfg.AdminToken = v.String("PAYMENT_HTTP_ADDR"), v.String("PAYMENT_ADMIN_TOKEN")
	retries, err := v.Int("PAYMENT_MAX_RETRIES", 0)
	cfg.MaxRetries, errs[1] = int(retries), err
	cfg.RetryInterval, errs[2] = v.Duration("PAYMENT_RETRY_INTERVAL", false)
	cfg.ApproveLimit, errs[3] = v.Int("GATEWAY_APPROVE_LIMIT", 0)
	cfg.TransientFailureRate, errs[4] = v.Float("GATEWAY_TRANSIENT_FAILURE_RATE", 0, 1)
	cfg.GatewayLatency, errs[5] = v.Duration("GATEWAY_LATENCY", true)
	cfg.Forwarder, errs[6] = outbox.SettingsFrom(v)
	return cfg, errors.Join(errs[:]...)
}
