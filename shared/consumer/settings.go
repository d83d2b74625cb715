package consumer

import (
	"errors"
	"time"

	"github.com/es-outbox/reference/shared/envconfig"
)

// Variables configure the retries of any service's consumer.
var Variables = envconfig.Vars{
	{Name: "CONSUMER_MAX_RETRIES", Default: "3", Usage: "retries of a failing message before it goes to the poison queue"},
	{Name: "CONSUMER_RETRY_INTERVAL", Default: "100ms", Usage: "first wait between retries; doubles each retry"},
}

// Settings are a service's retry settings.
type Settings struct {
	MaxRetries    int
	RetryInterval time.Duration
}

// SettingsFrom reads the consumer Variables from vs.
func SettingsFrom(vs envconfig.Vars) (Settings, error) {
	retries, err := vs.Int("CONSUMER_MAX_RETRIES", 0)
	interval, ierr := vs.Duration("CONSUMER_RETRY_INTERVAL", false)
	return Settings{MaxRetries: int(retries), RetryInterval: interval}, errors.Join(err, ierr)
}
