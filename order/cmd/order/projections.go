package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/eventstore"
)

const replayUsage = `Usage: order replay --projection NAME | --all [--batch-size N]

Rebuilds read models from the first event into new tables while the live ones
keep serving, then swaps each in atomically; the projector in order serve
carries on from the swapped-in checkpoint. Only one replay of a projection
runs at a time.

Projections: %s

Flags:
`

// replayCommand parses the flags of order replay and returns the replay.
func replayCommand(args []string, stdout io.Writer) (func(context.Context, *service.Service) error, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	name := fs.String("projection", "", "the projection to rebuild")
	all := fs.Bool("all", false, "rebuild every projection, one after another")
	batchSize := fs.Int("batch-size", projections.DefaultReplayBatchSize, "events applied per transaction")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), replayUsage, strings.Join(projections.Names(), ", "))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	var chosen []projections.Projection
	var err error
	switch {
	case *all == (*name != ""):
		err = errors.New("name one projection with --projection NAME, or use --all (see order replay --help)")
	case *batchSize < 1:
		err = fmt.Errorf("--batch-size %d: must be at least 1", *batchSize)
	case *all:
		chosen = projections.All
	default:
		var p projections.Projection
		p, err = projections.Named(*name)
		chosen = []projections.Projection{p}
	}
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, svc *service.Service) error {
		show := newProgressPrinter(stdout)
		for _, p := range chosen {
			if _, err := svc.Replay(ctx, p, projections.ReplayOptions{BatchSize: *batchSize, Progress: show}); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

const projectionsUsage = `Usage: order projections

Lists each read model with its checkpoint (the last applied event's
transaction id and position), its lag behind the event store in events and
as the age of the oldest unapplied event, when its checkpoint last moved,
the events it passed over because their type (or schema version) is newer
than this code, counted per type (rebuild it with order replay once the
newer code runs), and the last error, if the last batch failed.
`

// projectionsCommand parses the flags of order projections and returns the
// listing.
func projectionsCommand(args []string, stdout io.Writer) (func(context.Context, *service.Service) error, error) {
	fs := flag.NewFlagSet("projections", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), projectionsUsage) }
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	return func(ctx context.Context, svc *service.Service) error {
		statuses, err := svc.ProjectionStatuses(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "PROJECTION\tCHECKPOINT\tLAG (EVENTS)\tLAG (AGE)\tUPDATED\tSKIPPED\tLAST ERROR")
		for _, s := range statuses {
			checkpoint, updated, skipped, lastError := "start", "never", "-", "-"
			if s.Checkpoint != eventstore.Start {
				checkpoint = s.Checkpoint.String()
			}
			if !s.UpdatedAt.IsZero() {
				updated = s.UpdatedAt.UTC().Format(time.RFC3339)
			}
			if len(s.Skipped) > 0 {
				kinds := make([]string, len(s.Skipped))
				for i, k := range s.Skipped {
					kinds[i] = k.String()
				}
				skipped = strings.Join(kinds, "; ")
			}
			if s.LastError != "" {
				lastError = s.LastErrorAt.UTC().Format(time.RFC3339) + " " + strings.Join(strings.Fields(s.LastError), " ")
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, checkpoint, s.LagEvents, s.LagAge.Round(time.Millisecond), updated, skipped, lastError)
		}
		return w.Flush()
	}, nil
}

// parseFlags parses a command's flags, keeping any error to one line:
// --help prints the usage to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	case err != nil:
		return fmt.Errorf("%s: %w (see order %s --help)", fs.Name(), err, fs.Name())
	case fs.NArg() > 0:
		return fmt.Errorf("%s: unexpected argument %q (see order %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// newProgressPrinter shows a replay's progress on w: on a terminal, one line
// rewritten a few times a second; elsewhere (logs, CI), one line per stage.
func newProgressPrinter(w io.Writer) func(projections.Progress) {
	f, ok := w.(*os.File)
	onTerminal := ok && term.IsTerminal(int(f.Fd()))
	var lastStage projections.Stage
	var lastShown time.Time
	return func(p projections.Progress) {
		if onTerminal {
			if p.Stage == projections.StageDone {
				fmt.Fprintf(w, "\r\033[K%s\n", describe(p))
			} else if p.Stage != lastStage || time.Since(lastShown) >= 250*time.Millisecond {
				fmt.Fprintf(w, "\r\033[K%s", describe(p))
				lastShown = time.Now()
			}
		} else if p.Stage != lastStage {
			fmt.Fprintln(w, describe(p))
		}
		lastStage = p.Stage
	}
}

func describe(p projections.Progress) string {
	switch p.Stage {
	case projections.StageRebuilding:
		if p.Events == 0 {
			return fmt.Sprintf("%s: rebuilding into %s_rebuild from the first event (about %d events)", p.Projection, p.Projection, p.Total)
		}
		return fmt.Sprintf("%s: rebuilding into %s_rebuild: %d of about %d events, %.0f events/s, ETA %s",
			p.Projection, p.Projection, p.Events, p.Total, p.Rate(), p.Remaining().Round(time.Second))
	case projections.StageIndexing:
		return fmt.Sprintf("%s: rebuilt %d events in %s (%.0f events/s); creating the other indexes of %s_rebuild",
			p.Projection, p.Events, p.Elapsed.Round(time.Millisecond), p.Rate(), p.Projection)
	case projections.StageSwapping:
		return fmt.Sprintf("%s: rebuilt %d events in %s (%.0f events/s); applying the last events and swapping it in",
			p.Projection, p.Events, p.Elapsed.Round(time.Millisecond), p.Rate())
	}
	return fmt.Sprintf("%s: done: %d events in %s (%.0f events/s); the rebuilt table is live",
		p.Projection, p.Events, p.Elapsed.Round(time.Millisecond), p.Rate())
}
