package contracts_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/es-outbox/reference/shared/contracts"
)

// The contract names the keys Watermill's middleware sets without importing
// Watermill; they must stay the ones it sets.
func TestMetadataKeysAreWatermills(t *testing.T) {
	for ours, watermills := range map[string]string{
		contracts.CorrelationIDKey:      middleware.CorrelationIDMetadataKey,
		contracts.ReasonPoisonedKey:     middleware.ReasonForPoisonedKey,
		contracts.PoisonedTopicKey:      middleware.PoisonedTopicKey,
		contracts.PoisonedHandlerKey:    middleware.PoisonedHandlerKey,
		contracts.PoisonedSubscriberKey: middleware.PoisonedSubscriberKey,
	} {
		if ours != watermills {
			t.Errorf("contracts says %q where Watermill sets %q", ours, watermills)
		}
	}
}
