package httpserver_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/httpserver"
)

// The profiles are served where PPROF_ADDR says, and stop with the service;
// without an address nothing listens.
func TestServeProfiles(t *testing.T) {
	if err := httpserver.ServeProfiles(context.Background(), "", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if err := httpserver.ServeProfiles(ctx, addr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("GET /debug/pprof/goroutine = %d %.100s", resp.StatusCode, body)
	}
	if err := httpserver.ServeProfiles(ctx, addr, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a second listener on the same address opened")
	}
	cancel()
	testenv.Eventually(t, 5*time.Second, "the profiles endpoint closed", func() bool {
		_, err := http.Get("http://" + addr + "/debug/pprof/")
		return err != nil
	})
}
