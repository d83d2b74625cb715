package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one run of a service binary. The harness cannot use
// testenv.Process (that needs a testing.TB, and `task chaos` is a program), so
// this is the same idea: start, crash (SIGKILL) or stop (SIGTERM), with the
// output appended to a log file that survives restarts, for post-mortems.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// spec says how to (re)start a process: the same binary, arguments and
// environment every time, so a restart is the same replica coming back.
type spec struct {
	name string
	bin  string
	args []string
	env  []string
	log  string
}

func start(s spec) (*process, error) {
	out, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "--- %s started %s\n", s.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(append(os.Environ(), "GOTRACEBACK=all"), s.env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Killed with the harness, should it die first: a service left running
	// would hold transactions open on the shared server (see
	// docs/reliability.md, open findings) and slow every other test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s (%s): %w", s.name, filepath.Base(s.bin), err)
	}
	p := &process{name: s.name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
	return p, nil
}

// kill crashes the process (kill -9) and waits until it is gone.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// dumpStacks ends the process with SIGQUIT, on which the Go runtime writes
// every goroutine's stack to the log: what a stalled service was waiting on.
func (p *process) dumpStacks() {
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// stop asks the process to shut down (SIGTERM); after timeout it is killed.
func (p *process) stop(timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
	}
}

// exited reports whether the process has ended on its own.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
