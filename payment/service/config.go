// Package service wires the payment service together: configuration, the
// database, the Kafka router, the HTTP API and the forwarder of payment events.
package service

import (
	"errors"
	"slices"
	"time"

	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/outbox"
)

// Variables are the payment service's environment variables.
var Variables = slices.Concat(
	envconfig.Common("postgres://postgres@127.0.0.1:5432/payments?sslmode=disable", "PostgreSQL database of the payment service (payment events, outbox, poison store)"),
	envconfig.Vars{
		{Name: "PAYMENT_HTTP_ADDR", Default: "127.0.0.1:8081", Usage: "address of the HTTP API: /livez, /readyz, /metrics, payments and the poison-queue admin endpoints"},
		{Name: "PAYMENT_ADMIN_TOKEN", Default: "", Usage: "bearer token the /v1/admin endpoints require; empty disables them"},
		{Name: "PAYMENT_CURRENCIES", Default: "", Usage: "comma-separated ISO 4217 codes the service charges in; an order in another is declined (empty: any)"},
		{Name: "GATEWAY_APPROVE_LIMIT", Default: "100000", Usage: "the simulated gateway approves charges up to this amount in minor units and declines larger ones"},
		{Name: "GATEWAY_TRANSIENT_FAILURE_RATE", Default: "0", Usage: "chance from 0 to 1 that a gateway call fails transiently (to see retries)"},
		{Name: "GATEWAY_LATENCY", Default: "0s", Usage: "delay added to every gateway call"},
	},
	consumer.Variables,
	outbox.Variables,
)

// Config is the payment service's configuration.
type Config struct {
	envconfig.Service
	HTTPAddr string
	// AdminToken guards the admin endpoints; empty disables them.
	AdminToken string
	Consumer   consumer.Settings
	// Policy is what the service agrees to charge; it declines the rest.
	Policy               payment.Policy
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
		errs [6]error
	)
	cfg.Service, errs[0] = v.Service()
	cfg.HTTPAddr, cfg.AdminToken = v.String("PAYMENT_HTTP_ADDR"), v.String("PAYMENT_ADMIN_TOKEN")
	cfg.Consumer, errs[1] = consumer.SettingsFrom(v)
	cfg.Policy.Currencies = envconfig.SplitList(v.String("PAYMENT_CURRENCIES"))
	cfg.ApproveLimit, errs[2] = v.Int("GATEWAY_APPROVE_LIMIT", 0)
	cfg.TransientFailureRate, errs[3] = v.Float("GATEWAY_TRANSIENT_FAILURE_RATE", 0, 1)
	cfg.GatewayLatency, errs[4] = v.Duration("GATEWAY_LATENCY", true)
	cfg.Forwarder, errs[5] = outbox.SettingsFrom(v)
	return cfg, errors.Join(errs[:]...)
}
