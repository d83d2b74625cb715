// Package service wires the order service together: configuration, the
// database, the HTTP API, the forwarder, the projector and the consumer of
// payment outcomes.
package service

import (
	"errors"
	"slices"
	"time"

	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/outbox"
)

// Variables are the order service's environment variables.
var Variables = slices.Concat(
	envconfig.Common("postgres://postgres@127.0.0.1:5432/orders?sslmode=disable", "PostgreSQL database of the order service (event store and outbox)"),
	envconfig.Vars{
		{Name: "HTTP_ADDR", Default: "127.0.0.1:8080", Usage: "address of the HTTP API and the console (/console/)"},
		{Name: "ORDER_ADMIN_TOKEN", Default: "", Usage: "bearer token the /v1/admin endpoints (the poison queue, order.poison) and the console's actions on the order service (a projection rebuild) require; empty disables them"},
		{Name: "CONSOLE_PAYMENT_URL", Default: "http://127.0.0.1:8081", Usage: "the payment service's HTTP API, as the console reaches it"},
		{Name: "CONSOLE_JAEGER_URL", Default: "", Usage: "a Jaeger UI address (http://localhost:16686) for the console's links to traces; empty: no links"},
	},
	consumer.Variables,
	outbox.Variables,
	projections.Variables,
	ports.DeadlineVariables,
)

// Config is the order service's configuration.
type Config struct {
	envconfig.Service
	HTTPAddr string
	// AdminToken guards the admin endpoints and the console's actions on
	// the order service; empty disables them.
	AdminToken string
	Console    ConsoleSettings
	Consumer   consumer.Settings
	Forwarder  outbox.Settings
	Projector  projections.Settings
	// Deadlines default to DefaultDeadlines where zero.
	Deadlines ports.DeadlineSettings
}

// DefaultDeadlines are the deadlines of a Config that sets none.
var DefaultDeadlines = ports.DeadlineSettings{PaymentTimeout: 15 * time.Minute, RefundTimeout: 15 * time.Minute, CheckInterval: 5 * time.Second}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv() (Config, error) {
	svc, err := Variables.Service()
	consumerSettings, cerr := consumer.SettingsFrom(Variables)
	forwarder, ferr := outbox.SettingsFrom(Variables)
	projector, perr := projections.SettingsFrom(Variables)
	deadlines, derr := ports.DeadlineSettingsFrom(Variables)
	cfg := Config{Service: svc, HTTPAddr: Variables.String("HTTP_ADDR"), AdminToken: Variables.String("ORDER_ADMIN_TOKEN"),
		Consumer: consumerSettings, Forwarder: forwarder, Projector: projector, Deadlines: deadlines,
		Console: ConsoleSettings{PaymentURL: Variables.String("CONSOLE_PAYMENT_URL"), JaegerURL: Variables.String("CONSOLE_JAEGER_URL")}}
	return cfg, errors.Join(err, cerr, ferr, perr, derr)
}

// ConsoleSettings configure the operator console (/console/).
type ConsoleSettings struct {
	// PaymentURL is the payment service's API.
	PaymentURL string
	// JaegerURL, if set, is where traces are linked to.
	JaegerURL string
}
