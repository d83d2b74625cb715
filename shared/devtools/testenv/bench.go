package testenv

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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

// IdleCost measures what this process costs while idle: it waits a second
// for start-up, then returns the CPU milliseconds the process spent and the
// transactions begun on pool (its acquisitions), per second of d.
func IdleCost(pool *pgxpool.Pool, d time.Duration) (cpuMillis, transactions float64) {
	time.Sleep(time.Second)
	cpu0, tx0 := OwnCPUTime(), pool.Stat().AcquireCount()
	time.Sleep(d)
	cpu1, tx1 := OwnCPUTime(), pool.Stat().AcquireCount()
	return float64((cpu1 - cpu0).Milliseconds()) / d.Seconds(), float64(tx1-tx0) / d.Seconds()
}

// OwnCPUTime is this process's CPU time so far, to the microsecond (CPUTime's
// /proc counts in ticks of 10 ms, too coarse for an idle process).
func OwnCPUTime() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
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
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(f[11], f[12])
}

// TreeCPUTime returns the CPU time a process and its children have used:
// its own, that of the children it has reaped, and that of the children
// still running. For a PostgreSQL server's postmaster, that is the
// server's: every backend, live or gone, and the background processes.
func TreeCPUTime(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	own, err := ticks(f[11], f[12], f[13], f[14]) // utime, stime, cutime, cstime
	if err != nil {
		return 0, err
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := strconv.Itoa(pid)
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if f, err := procStat(child); err == nil && f[1] == parent {
			if cpu, err := ticks(f[11], f[12]); err == nil {
				own += cpu
			}
		}
	}
	return own, nil
}

// ParentPID returns the pid of the process's parent.
func ParentPID(pid int) (int, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// procStat returns the fields of /proc/PID/stat after the command name
// (which is in parentheses and may hold spaces): the state first, then
// the parent's pid, and so on.
func procStat(pid int) ([]string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	return f, nil
}

// ticks sums fields of /proc/PID/stat counted in clock ticks of 1/100 s.
func ticks(fields ...string) (time.Duration, error) {
	var sum int64
	for _, v := range fields {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return time.Duration(sum) * 10 * time.Millisecond, nil
}
