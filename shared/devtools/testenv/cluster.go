package testenv

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
)

// KafkaCluster returns the real Apache Kafka cluster in the directory
// TEST_KAFKA_CLUSTER names, for a test that injects broker faults (kill the
// leader of a partition, stop two of three nodes) or needs real Kafka. The
// test has the cluster to itself: it waits for the tests of other packages
// to release it (a lock file beside the cluster), then deletes the
// project's topics and consumer groups and creates the topics anew (4
// partitions, 3 replicas). When the test ends, every node it stopped is
// started again and the cluster is left healthy (all replicas in sync)
// before the next test gets it. Without TEST_KAFKA_CLUSTER the test is
// skipped with a line saying so: the development broker has no replicas to
// fail.
func KafkaCluster(t testing.TB) *kafkacluster.Cluster {
	t.Helper()
	dir := os.Getenv("TEST_KAFKA_CLUSTER")
	if dir == "" {
		t.Skip("needs the real Apache Kafka cluster: run task test-kafka")
	}
	if c, ok := held.Load(t); ok { // this test holds it already (testenv.Kafka called first)
		return c.(*kafkacluster.Cluster)
	}
	c, err := kafkacluster.Open(dir)
	if err != nil {
		t.Fatalf("testenv: TEST_KAFKA_CLUSTER: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "tests.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("testenv: lock %s: %v", lock.Name(), err)
	}
	restore := func() {
		for _, n := range c.Nodes {
			if err := c.StartNode(n.ID); err != nil {
				t.Errorf("testenv: restart node %d: %v", n.ID, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := c.WaitHealthy(ctx); err != nil {
			t.Errorf("testenv: the cluster did not recover after the test: %v", err)
		}
	}
	t.Cleanup(func() {
		restore()
		held.Delete(t)
		lock.Close() // releases the lock
	})
	restore() // a test of another package that died may have left a node down
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.ResetTopics(ctx, 4, devkafka.Topics...); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	held.Store(t, c)
	return c
}

// held is the cluster each running test holds, by test.
var held sync.Map
