package gctarget

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTheServicesCollectAtPercentUnlessGOGCSaysOtherwise(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())

	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	Set()
	if got := gcPercent(); got != Percent {
		t.Errorf("with GOGC unset: GC percent %d, want %d", got, Percent)
	}

	t.Setenv("GOGC", "50") // Go read it at start: as if the service had started with it
	debug.SetGCPercent(50)
	Set()
	if got := gcPercent(); got != 50 {
		t.Errorf("with GOGC=50: GC percent %d, want it left at 50", got)
	}
}
