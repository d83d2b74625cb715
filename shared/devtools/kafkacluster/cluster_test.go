package kafkacluster

import (
	"os/exec"
	"testing"
	"time"
)

// A node killed is gone for Kill only once it has let go of its files and
// sockets, which is when it is reaped, or a zombie with no thread left: not
// while it still runs, nor for another process that took its pid later.
func TestAKilledProcessHasEndedOnceItIsAZombieOrReaped(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_, start, _, ok := procStat(pid)
	if !ok {
		t.Fatalf("no /proc entry for pid %d", pid)
	}
	if ended(pid, start) {
		t.Fatal("a running process counts as ended")
	}
	if !ended(pid, start+1) {
		t.Fatal("another process with the same pid counts as the one that ran")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if state, _, _, _ := procStat(pid); state == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed process did not become a zombie")
		}
	}
	if !ended(pid, start) {
		t.Fatal("a zombie with no thread left counts as running")
	}
	_ = cmd.Wait()
	if !ended(pid, start) {
		t.Fatal("a reaped process counts as running")
	}
}
