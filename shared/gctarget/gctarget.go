// Package gctarget sets the garbage collector's target for the services'
// long-running commands (serve, forward).
package gctarget

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC the services run with unless the environment sets
// GOGC: the heap may grow to three times what is live before a collection,
// instead of Go's default of twice. The services hold little (10 to 20 MiB
// live) and allocate for every message and request, so Go's default
// collected many times a second at load. Measured at 800 orders/s (dev
// broker, docs/benchmarks.md): 0.92x the CPU per order across both
// services for about 15 MiB more peak RSS each (order 62-68 MiB, payment
// 54-58 MiB); 400 saved no more CPU and took each to 80-88 MiB.
const Percent = 200

// Set sets the collector's target to Percent, unless GOGC is set (Go reads
// it at start; GOGC=off or any number stays as given).
func Set() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
}
