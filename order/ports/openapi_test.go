package ports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/es-outbox/reference/order/ports"
)

// api is a client of the order API that checks every response against the
// OpenAPI document: a test that talks to the API also tests the document.
type api struct {
	t      *testing.T
	srv    *httptest.Server
	router routers.Router
}

func newAPI(t *testing.T, srv *httptest.Server) *api {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(ports.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, srv: srv, router: router}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// do sends a request and validates the response against the document.
func (a *api) do(method, path string, headers map[string]string, body string) response {
	a.t.Helper()
	r, err := a.try(method, path, headers, body)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// try is do that returns an error if no response came, for a goroutine
// other than the test's.
func (a *api) try(method, path string, headers map[string]string, body string) (response, error) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)

	// Match the route as the document's server would see it.
	specReq, _ := http.NewRequest(method, "http://127.0.0.1:8080"+path, nil)
	route, params, err := a.router.FindRoute(specReq)
	if err != nil {
		a.t.Errorf("%s %s is not in openapi.yaml: %v", method, path, err)
		return r, nil
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: specReq, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	input.SetBodyBytes(bytes.Clone(raw))
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		a.t.Errorf("%s %s: response %d does not match openapi.yaml: %v\n%s", method, path, resp.StatusCode, err, raw)
	}
	return r, nil
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	srv, _ := newServer(t)
	resp, err := http.Get(srv.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, ports.OpenAPI) {
		t.Errorf("GET /openapi.yaml = %d, %d bytes", resp.StatusCode, len(body))
	}
}
