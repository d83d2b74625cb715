package httpserver_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/httpserver"
)

// Slow clients cannot hold a connection: one that never finishes its headers
// is cut off after the header timeout, one that trickles its body after the
// read timeout, and no handler ever sees a complete request from them.
func TestSlowClientsAreCutOff(t *testing.T) {
	var complete atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			complete.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.NewServer(ln.Addr().String(), handler)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	cases := []struct {
		name    string
		start   string
		trickle bool
		within  time.Duration
	}{
		{"headers never finished", "POST /v1/orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n", false, srv.ReadHeaderTimeout + 3*time.Second},
		{"body trickled", "POST /v1/orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 1000\r\n\r\n", true, srv.ReadTimeout + 3*time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			started := time.Now()
			if _, err := io.WriteString(conn, c.start); err != nil {
				t.Fatal(err)
			}
			if c.trickle {
				go func() {
					for range 500 { // two bytes a second: 1000 bytes would take 500 s
						if _, err := conn.Write([]byte("x")); err != nil {
							return
						}
						time.Sleep(500 * time.Millisecond)
					}
				}()
			}
			_ = conn.SetReadDeadline(started.Add(2 * c.within))
			_, err = io.Copy(io.Discard, conn) // until the server closes the connection
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server still held the connection after %s", 2*c.within)
			}
			if elapsed := time.Since(started); elapsed > c.within {
				t.Errorf("the server cut the connection off after %s, want within %s", elapsed.Round(time.Millisecond), c.within)
			}
		})
	}
	t.Cleanup(func() {
		if n := complete.Load(); n != 0 {
			t.Errorf("a handler read %d complete bodies from slow clients", n)
		}
	})
}
