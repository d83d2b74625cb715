package outbox

import "github.com/twmb/franz-go/pkg/kgo"

// SetProducerOptions makes forwarders built from now on use opts on top of
// the production producer settings, until restore is called.
func SetProducerOptions(opts ...kgo.Opt) (restore func()) {
	producerOptions = opts
	return func() { producerOptions = nil }
}
