package testenv

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Percentile returns the p-th percentile (0 to 100) of values, nearest rank
// below; values are left as they were.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p/100)]
}

// Concurrently runs call from clients goroutines, each as soon as its last
// call returned, for d, and returns the calls per second and each call's
// latency in ms. It stops at the first error.
func Concurrently(clients int, d time.Duration, call func() error) (perSecond float64, latencies []float64, err error) {
	var (
		g  errgroup.Group
		mu sync.Mutex
	)
	start := time.Now()
	for range clients {
		g.Go(func() error {
			var mine []float64
			defer func() {
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
			for time.Since(start) < d {
				t := time.Now()
				if err := call(); err != nil {
					return err
				}
				mine = append(mine, float64(time.Since(t).Microseconds())/1000)
			}
			return nil
		})
	}
	err = g.Wait()
	return float64(len(latencies)) / time.Since(start).Seconds(), latencies, err
}

// PeakRSS returns the peak resident set size of the process (VmHWM in
// /proc/PID/status) in MiB.
func PeakRSS(pid int) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kB, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kB / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// CPUTime returns the CPU time (user and system) the process has used, from
// /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th, in clock ticks of 1/100 s.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, errors.Join(err1, err2)
}
