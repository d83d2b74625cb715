package service_test

import (
	"testing"

	"github.com/es-outbox/reference/payment/service"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

func TestEveryVariableIsDocumented(t *testing.T) {
	testenv.Documented(t, "../../README.md", service.Variables)
}
