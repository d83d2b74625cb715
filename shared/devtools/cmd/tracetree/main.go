// Command tracetree prints one trace as an indented tree of spans, read from
// files written by services running with OTEL_TRACES_EXPORTER=console: a
// look at a trace without installing Jaeger.
//
//	tracetree --attr order.id=ID FILE...
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/tracing"
)

func main() {
	cli.Exit("tracetree", run())
}

func run() error {
	fs := flag.NewFlagSet("tracetree", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tracetree --attr KEY=VALUE FILE...\n\n"+
			"Prints the trace of the first span that has the attribute, from console-exporter output.\n\n")
		fs.PrintDefaults()
	}
	attr := fs.String("attr", "", "attribute that picks the trace, such as order.id=0196…")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	key, value, ok := strings.Cut(*attr, "=")
	if !ok || fs.NArg() == 0 {
		return errors.New("need --attr KEY=VALUE and at least one FILE (see --help)")
	}
	var spans []tracing.Span
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		s, err := tracing.ReadSpans(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		spans = append(spans, s...)
	}
	for _, s := range spans {
		if s.Attr(key) == value {
			trace := tracing.Trace(spans, s.SpanContext.TraceID)
			fmt.Printf("trace %s (%d spans)\n%s", s.SpanContext.TraceID, len(trace), tracing.Tree(trace))
			return nil
		}
	}
	return fmt.Errorf("no span with %s=%s in %d spans", key, value, len(spans))
}
