package service_test

import (
	"testing"

	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

func TestEveryVariableIsDocumented(t *testing.T) {
	testenv.Documented(t, "../../README.md", service.Variables)
}

// LOG_LEVEL is read as log/slog reads a level, in any case; anything else is
// a configuration error rather than a silent info.
func TestLogLevelIsChecked(t *testing.T) {
	for level, ok := range map[string]bool{"debug": true, "INFO": true, "Warn": true, "error": true, "verbose": false, "warning": false} {
		t.Setenv("LOG_LEVEL", level)
		if _, err := service.ConfigFromEnv(); (err == nil) != ok {
			t.Errorf("LOG_LEVEL=%s: error %v, want one: %t", level, err, !ok)
		}
	}
}
