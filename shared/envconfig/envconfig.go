// Package envconfig reads a service's configuration from environment
// variables, each declared with its default and what it is for, so that
// --help and the README list them from one place; Common declares the ones
// every service has (its database, the Kafka brokers, the log level, the
// profiling endpoint). It is
// written here rather than taken from a library (envconfig, viper) because
// it is this small: a list of documented variables and one parse function
// per kind of value, with errors that name the variable, where a library
// would add struct tags, reflection and a dependency for the same dozen
// variables.
package envconfig

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Var is one environment variable.
type Var struct {
	Name    string
	Default string
	Usage   string
}

// Vars is a service's set of variables.
type Vars []Var

// String returns the variable's value, or its default when unset or empty.
func (vs Vars) String(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	for _, v := range vs {
		if v.Name == name {
			return v.Default
		}
	}
	panic("envconfig: undeclared variable " + name)
}

// Duration parses a positive duration such as 20ms, or 0 if allowZero.
func (vs Vars) Duration(name string, allowZero bool) (time.Duration, error) {
	s := vs.String(name)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || (d == 0 && !allowZero) {
		return 0, fmt.Errorf("%s=%q is not a positive duration such as 20ms", name, s)
	}
	return d, nil
}

// Int parses a whole number of at least min.
func (vs Vars) Int(name string, min int64) (int64, error) {
	s := vs.String(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s=%q is not a whole number of at least %d", name, s, min)
	}
	return n, nil
}

// Float parses a number between min and max.
func (vs Vars) Float(name string, min, max float64) (float64, error) {
	s := vs.String(name)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < min || f > max {
		return 0, fmt.Errorf("%s=%q is not a number from %g to %g", name, s, min, max)
	}
	return f, nil
}

// Bool parses true or false.
func (vs Vars) Bool(name string) (bool, error) {
	s := vs.String(name)
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not true or false", name, s)
	}
	return b, nil
}

// PrintUsage lists the variables for --help.
func (vs Vars) PrintUsage(w io.Writer) {
	for _, v := range vs {
		fmt.Fprintf(w, "  %-32s %s (default %q)\n", v.Name, v.Usage, v.Default)
	}
}

// Common returns the variables every service has: its database (with the
// given default), the Kafka brokers, the log level and the address of the
// opt-in profiling endpoint.
func Common(databaseDefault, databaseUsage string) Vars {
	return Vars{
		{Name: "DATABASE_URL", Default: databaseDefault, Usage: databaseUsage},
		{Name: "KAFKA_BROKERS", Default: "127.0.0.1:9092", Usage: "comma-separated Kafka bootstrap brokers"},
		{Name: "LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error"},
		{Name: "PPROF_ADDR", Default: "", Usage: "address of a listener for Go's profiles (/debug/pprof/), apart from the API; empty: none"},
	}
}

// Service is the configuration every service has.
type Service struct {
	DatabaseURL  string
	KafkaBrokers []string
	LogLevel     string
	// PprofAddr, if not empty, is where Go's profiles are served.
	PprofAddr string
}

// Service reads the variables of Common.
func (vs Vars) Service() (Service, error) {
	s := Service{
		DatabaseURL: vs.String("DATABASE_URL"), KafkaBrokers: SplitList(vs.String("KAFKA_BROKERS")), LogLevel: vs.String("LOG_LEVEL"),
		PprofAddr: vs.String("PPROF_ADDR"),
	}
	if len(s.KafkaBrokers) == 0 {
		return s, errors.New("KAFKA_BROKERS names no broker")
	}
	if err := new(slog.Level).UnmarshalText([]byte(s.LogLevel)); err != nil {
		return s, fmt.Errorf("LOG_LEVEL=%q is not debug, info, warn or error", s.LogLevel)
	}
	return s, nil
}

// SplitList splits a comma-separated value such as KAFKA_BROKERS.
func SplitList(s string) []string {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
