package kafkacluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devtools/devkafka"
)

// A reset must not hand the next test a group that still has a member (a
// consumer left running by an earlier test would take part of its
// records): deleteGroups fails naming the member, and deletes the group
// once the member has left. The development broker answers the same admin
// requests as the cluster.
func TestGroupsWithMembersAreNamedNotDeleted(t *testing.T) {
	broker, err := devkafka.Start(devkafka.Config{Partitions: 1, Topics: []string{"order.events"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	member, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.ClientID("stray-consumer"),
		kgo.ConsumerGroup("payment"), kgo.ConsumeTopics("order.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	admin, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for joined := false; !joined; {
		poll, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(poll) // joins the group
		stop()
		described, err := adm.DescribeGroups(ctx, "payment")
		joined = err == nil && len(described["payment"].Members) == 1
		if ctx.Err() != nil {
			t.Fatal("the consumer never joined its group")
		}
	}

	err = deleteGroups(ctx, adm, time.Second)
	if err == nil || !strings.Contains(err.Error(), "payment: stray-consumer") {
		t.Fatalf("deleteGroups with a member in the group = %v, want an error naming payment's member stray-consumer", err)
	}
	member.Close() // leaves the group
	if err := deleteGroups(ctx, adm, 30*time.Second); err != nil {
		t.Fatalf("deleteGroups after the member left: %v", err)
	}
	if groups, err := adm.ListGroups(ctx); err != nil || len(groups) != 0 {
		t.Fatalf("groups after the reset: %v (%v), want none", groups.Groups(), err)
	}
}
