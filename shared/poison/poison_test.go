package poison_test

import (
	"errors"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/poison"
)

func TestParseStatusFilter(t *testing.T) {
	for in, want := range map[string]poison.Status{"new": poison.StatusNew, "requeued": poison.StatusRequeued, "discarded": poison.StatusDiscarded, "all": ""} {
		if got, err := poison.ParseStatusFilter(in); got != want || err != nil {
			t.Errorf("ParseStatusFilter(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "New", "lost"} {
		if _, err := poison.ParseStatusFilter(in); !errors.Is(err, poison.ErrInvalidStatus) {
			t.Errorf("ParseStatusFilter(%q) = %v, want ErrInvalidStatus", in, err)
		}
	}
}

func TestAnEntryIsHandledOnce(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	e := poison.Entry{ID: "0-3", Status: poison.StatusNew}
	if err := e.MarkDiscarded(" ", "ann", at); !errors.Is(err, poison.ErrReasonRequired) || e.Status != poison.StatusNew {
		t.Errorf("discard without a reason = %v, status %s", err, e.Status)
	}
	to := poison.Position{Topic: "order.events", Partition: 1, Offset: 9}
	if err := e.MarkRequeued(to, "", at); err != nil || e.Status != poison.StatusRequeued || e.ChangedBy != "unknown" || e.RequeuedTo != to {
		t.Errorf("requeue = %v, entry %+v", err, e)
	}
	if err := e.MarkDiscarded("late", "bob", at); !errors.Is(err, poison.ErrHandled) || e.Status != poison.StatusRequeued {
		t.Errorf("discard after requeue = %v, status %s; want ErrHandled", err, e.Status)
	}
	if err := e.MarkRequeued(to, "bob", at); !errors.Is(err, poison.ErrHandled) || e.ChangedBy != "unknown" {
		t.Errorf("second requeue = %v, entry %+v; want ErrHandled", err, e)
	}
}

func TestPositionString(t *testing.T) {
	for p, want := range map[poison.Position]string{
		{Topic: "order.events", Partition: 2, Offset: 7}:   "order.events 2/7",
		{Topic: "order.events", Partition: -1, Offset: -1}: "order.events",
	} {
		if got := p.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", p, got, want)
		}
	}
}
