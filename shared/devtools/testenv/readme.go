package testenv

import (
	"os"
	"strings"
	"testing"

	"github.com/es-outbox/reference/shared/envconfig"
)

// Documented checks that the README (readme is its path) has a row in its
// configuration table for every variable, giving its default, so the docs
// cannot drift from the code.
func Documented(t testing.TB, readme string, vars envconfig.Vars) {
	t.Helper()
	raw, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(string(raw), "\n")
	for _, v := range vars {
		found := false
		for _, row := range rows {
			if strings.HasPrefix(row, "| `"+v.Name+"`") && (v.Default == "" || strings.Contains(row, "`"+v.Default+"`")) {
				found = true
			}
		}
		if !found {
			t.Errorf("the README's configuration table has no row for %s with its default %q", v.Name, v.Default)
		}
	}
}
