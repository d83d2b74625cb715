package devkafka_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// A record acknowledged before a restart is still there after it: the demo
// and the fault tests rely on the data directory.
func TestRestartKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	broker, err := devkafka.Start(devkafka.Config{DataDir: dir, Partitions: 3, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "order.events", Key: []byte("order-1"), Value: []byte("kept"),
		Headers: []kgo.RecordHeader{{Key: "event_id", Value: []byte("e-1")}}}
	if err := client.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	client.Close()
	broker.Close()

	broker, err = devkafka.Start(devkafka.Config{DataDir: dir, Partitions: 3, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	records := testenv.Records(t, []string{broker.Addr()}, "order.events", 1, 10*time.Second)
	if len(records) != 1 || string(records[0].Value) != "kept" {
		t.Fatalf("after restart order.events holds %d records, want the one produced before", len(records))
	}
}

// An idempotent producer that goes on after the broker restarted from its
// data directory (kill -9 of the dev broker) continues a sequence the
// broker no longer knows. Kafka would refuse such a batch; the dev broker
// must too, so that the producer starts its sequence anew (a new producer
// id or epoch) instead of having a later batch taken while an earlier one
// is retried. kfake alone takes the batch under the old producer id.
func TestRestartedBrokerRefusesAForgottenSequence(t *testing.T) {
	dir := t.TempDir()
	broker, err := devkafka.Start(devkafka.Config{DataDir: dir, Partitions: 1, Topics: []string{"order.events"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := broker.Addr()
	_, port, _ := net.SplitHostPort(addr)
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	produce := func(v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: "order.events", Key: []byte("order-1"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("first")
	broker.Close()
	n, _ := strconv.Atoi(port)
	broker, err = devkafka.Start(devkafka.Config{Port: n, DataDir: dir, Partitions: 1, Topics: []string{"order.events"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	produce("second") // sequence 1 of a producer the restarted broker does not know

	records := testenv.Records(t, []string{addr}, "order.events", 2, 10*time.Second)
	if len(records) != 2 {
		t.Fatalf("order.events holds %d records, want 2", len(records))
	}
	first, second := records[0], records[1]
	if string(first.Value) != "first" || string(second.Value) != "second" {
		t.Fatalf("records %q, %q; want first, second", first.Value, second.Value)
	}
	if first.ProducerID == second.ProducerID && first.ProducerEpoch == second.ProducerEpoch {
		t.Errorf("the restarted broker took sequence 1 of producer %d epoch %d, which it had forgotten", first.ProducerID, first.ProducerEpoch)
	}
}

// A consumer killed while it waits in JoinGroup is expired after its session
// timeout, as on Kafka, so the partitions it was assigned go to the living.
// kfake alone keeps such a member for ever when it answers the dead
// connection's JoinGroup, which it does at random one time in two: the stall
// the chaos suite found. Eight groups at once make it show almost surely.
func TestMemberKilledDuringJoinIsExpired(t *testing.T) {
	broker, err := devkafka.Start(devkafka.Config{Partitions: 4, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	errs := make(chan error)
	for i := range 8 {
		go func() { errs <- killDuringJoin(broker.Addr(), fmt.Sprintf("group-%d", i)) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// killDuringJoin has a member killed while it waits in JoinGroup, and
// reports whether the group notices it gone in time.
func killDuringJoin(addr, group string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer client.Close()

	// The survivor joins alone and takes every partition.
	survivor, err := join(ctx, client, group, "")
	if err != nil {
		return err
	}
	if err := assign(ctx, client, group, survivor); err != nil {
		return err
	}

	// A second member asks to join on its own connection and is killed (its
	// connection closed) while the broker holds its JoinGroup until the
	// survivor rejoins; then the survivor rejoins and assigns.
	conns := &connPorts{}
	victim, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.WithHooks(conns))
	if err != nil {
		return err
	}
	first, err := joinRequest(group, "").RequestWith(ctx, victim)
	if err != nil {
		return err
	}
	go func() { _, _ = joinRequest(group, first.MemberID).RequestWith(ctx, victim) }()
	if err := waitForGroupState(ctx, client, group, "PreparingRebalance"); err != nil { // the join is waiting at the broker
		return err
	}
	victim.Close()
	if err := waitForBrokerToClose(ctx, addr, conns.list()); err != nil {
		return err
	}
	if survivor, err = join(ctx, client, group, survivor.MemberID); err != nil {
		return err
	}
	if len(survivor.Members) != 2 {
		return fmt.Errorf("%s: the rebalance after the kill has %d members, want 2", group, len(survivor.Members))
	}
	if err := assign(ctx, client, group, survivor); err != nil {
		return err
	}

	// Within the dead member's session timeout (and a heartbeat or two) the
	// group must notice it gone: the survivor is told to rejoin, and the
	// next generation holds it alone.
	deadline := time.Now().Add(sessionTimeout + 5*time.Second)
	for {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.Generation, hb.MemberID = group, survivor.Generation, survivor.MemberID
		resp, err := hb.RequestWith(ctx, client)
		if err != nil {
			return err
		}
		if resp.ErrorCode == kerr.RebalanceInProgress.Code {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s after the kill the group still holds the dead member", group, sessionTimeout+5*time.Second)
		}
		time.Sleep(500 * time.Millisecond)
	}
	rejoined, err := join(ctx, client, group, survivor.MemberID)
	if err == nil && len(rejoined.Members) != 1 {
		err = fmt.Errorf("%s: after the session timeout the group has %d members, want the survivor alone", group, len(rejoined.Members))
	}
	return err
}

const sessionTimeout = 6 * time.Second // kfake's minimum

// waitForGroupState waits until DescribeGroups says group is in state.
func waitForGroupState(ctx context.Context, c *kgo.Client, group, state string) error {
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			return err
		}
		if len(resp.Groups) == 1 && resp.Groups[0].State == state {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: never %s: %w", group, state, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// connPorts is a kgo hook that keeps the local ports of a client's connections.
type connPorts struct {
	mu    sync.Mutex
	ports []int
}

func (c *connPorts) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err == nil {
		c.mu.Lock()
		c.ports = append(c.ports, conn.LocalAddr().(*net.TCPAddr).Port)
		c.mu.Unlock()
	}
}

func (c *connPorts) list() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ports)
}

// waitForBrokerToClose waits until the broker at addr has closed its end of
// every connection from the local ports (closed by the client): Linux lists
// an end still open in /proc/net/tcp as ESTABLISHED or CLOSE_WAIT.
func waitForBrokerToClose(ctx context.Context, addr string, ports []int) error {
	_, brokerPort, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	for {
		table, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			return err
		}
		open := 0
		for _, line := range strings.Split(string(table), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || (f[3] != "01" && f[3] != "08") || hexPort(f[1]) != brokerPort {
				continue
			}
			if p, _ := strconv.Atoi(hexPort(f[2])); slices.Contains(ports, p) {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the broker kept %d connections of a closed client open: %w", open, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// hexPort is the port of an address of /proc/net/tcp ("0100007F:1F90"), in decimal.
func hexPort(a string) string {
	_, h, _ := strings.Cut(a, ":")
	p, _ := strconv.ParseUint(h, 16, 16)
	return strconv.FormatUint(p, 10)
}

func joinRequest(group, memberID string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = group, memberID, "consumer"
	req.SessionTimeoutMillis = int32(sessionTimeout / time.Millisecond)
	req.RebalanceTimeoutMillis = 3000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	req.Protocols = append(req.Protocols, p)
	return req
}

// join joins the group as memberID, or as a new member when it is "" (the
// broker hands out the id first).
func join(ctx context.Context, c *kgo.Client, group, memberID string) (*kmsg.JoinGroupResponse, error) {
	for {
		resp, err := joinRequest(group, memberID).RequestWith(ctx, c)
		switch {
		case err != nil:
			return nil, err
		case resp.ErrorCode == kerr.MemberIDRequired.Code && memberID == "":
			memberID = resp.MemberID
		case resp.ErrorCode != 0:
			return nil, fmt.Errorf("%s: JoinGroup: %w", group, kerr.ErrorForCode(resp.ErrorCode))
		default:
			return resp, nil
		}
	}
}

// assign sends the leader's SyncGroup, assigning nothing in particular:
// what matters is the group's membership, not who reads which partition.
func assign(ctx context.Context, c *kgo.Client, group string, leader *kmsg.JoinGroupResponse) error {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = group, leader.Generation, leader.MemberID
	for _, m := range leader.Members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = m.MemberID
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	resp, err := req.RequestWith(ctx, c)
	if err == nil && resp.ErrorCode != 0 {
		err = fmt.Errorf("%s: SyncGroup: %w", group, kerr.ErrorForCode(resp.ErrorCode))
	}
	return err
}
