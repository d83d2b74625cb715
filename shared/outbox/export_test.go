package outbox

import "github.com/twmb/franz-go/pkg/kgo"

// SetProducerOptions makes forwarders built from now on use opts instead of
// the sender's own producer settings (on top of kafka.NewOrderedProducer's),
// until restore is called.
func SetProducerOptions(opts ...kgo.Opt) (restore func()) {
	producerOptions = opts
	return func() { producerOptions = nil }
}
