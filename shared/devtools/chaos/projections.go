package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/eventstore"
)

// projections are the order service's read models; each lives in a table of
// its name and keeps a checkpoint under that name.
var projections = []string{"order_summaries", "order_daily_stats"}

// checkProjections holds the live read models, built by the replicas'
// projectors through every crash, to a fresh replay: it waits until each
// projector has applied every stored event, reads the tables, rebuilds them
// with `order replay --all` (the operator's command), and reads them again.
func checkProjections(ctx context.Context, v *violations, pool *pgxpool.Pool, order spec, timeout time.Duration) error {
	if err := waitProjected(ctx, pool, timeout); err != nil {
		v.add(&v.projections, "%v", err)
		return nil
	}
	live, err := readProjections(ctx, pool)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, order.bin, "replay", "--all")
	cmd.Env = append(os.Environ(), order.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("order replay --all: %w: %s", err, strings.TrimSpace(string(out)))
	}
	replayed, err := readProjections(ctx, pool)
	if err != nil {
		return err
	}
	for _, name := range projections {
		for _, row := range difference(live[name], replayed[name]) {
			v.add(&v.projections, "%s: live row %s is not in a fresh replay", name, row)
		}
		for _, row := range difference(replayed[name], live[name]) {
			v.add(&v.projections, "%s: replayed row %s is not in the live projection", name, row)
		}
	}
	return nil
}

// waitProjected waits until every projection's checkpoint is at the last
// stored event.
func waitProjected(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		behind := 0
		statuses, err := eventstore.ReaderStatuses(ctx, pool, projections...)
		for _, s := range statuses {
			if s.LagEvents > 0 {
				behind++
			}
		}
		if err == nil && behind == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("projections still behind the event store after %s (%d of %d; err %v)", timeout, behind, len(projections), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readProjections returns each projection's rows as text.
func readProjections(ctx context.Context, pool *pgxpool.Pool) (map[string][]string, error) {
	tables := map[string][]string{}
	for _, name := range projections {
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s AS t`, name))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				rows.Close()
				return nil, err
			}
			tables[name] = append(tables[name], row)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// difference returns the rows of a that are not in b, counting repeats.
func difference(a, b []string) []string {
	inB := map[string]int{}
	for _, row := range b {
		inB[row]++
	}
	var only []string
	for _, row := range a {
		if inB[row] > 0 {
			inB[row]--
		} else {
			only = append(only, row)
		}
	}
	return only
}
