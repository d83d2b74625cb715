package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// DoJSON sends a request to url with the Authorization header auth (none if
// empty) and a JSON body (none if empty), decodes the JSON answer into out
// if it is not nil, and returns the status.
func DoJSON(t testing.TB, method, url, auth, body string, out any) int {
	t.Helper()
	status, answer := Call(t, method, url, auth, body)
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v", method, url, err)
		}
	}
	return status
}

// Call sends a request as DoJSON does and returns the status and the answer.
func Call(t testing.TB, method, url, auth, body string) (status int, answer []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, answer
}

// APIError is the body of an error answer of the services' HTTP APIs.
type APIError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}
