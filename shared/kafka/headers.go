package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// HeaderCarrier carries trace context in a record's headers: the
// forwarder's producer span reads its parent from them and writes itself
// into them (tracing.StartSend), as a Watermill message's metadata would
// carry it.
type HeaderCarrier struct{ *kgo.Record }

// Get returns the value of the first header named key, or "".
func (c HeaderCarrier) Get(key string) string {
	for _, h := range c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set sets the first header named key to value, or adds it.
func (c HeaderCarrier) Set(key, value string) {
	for i := range c.Headers {
		if c.Headers[i].Key == key {
			c.Headers[i].Value = []byte(value)
			return
		}
	}
	c.Headers = append(c.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys returns the headers' names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, len(c.Headers))
	for i, h := range c.Headers {
		keys[i] = h.Key
	}
	return keys
}
