package nats_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
)

// A group member that takes events and dies without acking them: another
// member gets them once the ack wait is over.
func TestCrashedMemberEventsGoToAnother(t *testing.T) {
	p := prefix(t)
	const n = 5
	ncA, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	connA, err := natsdriver.New(ncA, natsdriver.StreamPrefix(p))
	require.NoError(t, err)
	busA := newBus(t, gossip.Config{Conn: connA, AckWait: time.Second})
	taken := newLedger()
	release := make(chan struct{})
	defer close(release)
	_, err = busA.Subscribe("job", func(ctx context.Context, e *gossip.Event) error {
		taken.add(e.ID)
		<-release
		return nil
	}, gossip.Group("g"), gossip.Workers(n))
	require.NoError(t, err)

	pub := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p})
	var ids []string
	for i := range n {
		e := gossip.NewEvent("job", i)
		ids = append(ids, e.ID)
		require.NoError(t, pub.Publish(context.Background(), e))
	}
	taken.waitFor(t, ids, 10*time.Second)
	ncA.Close() // the crash: no ack, no keep-alive, no goodbye

	attempts := make(chan int, n)
	handled := newLedger()
	busB := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p, AckWait: time.Second})
	_, err = busB.Subscribe("job", func(ctx context.Context, e *gossip.Event) error {
		attempts <- e.Attempt()
		handled.add(e.ID)
		return nil
	}, gossip.Group("g"))
	require.NoError(t, err)
	handled.waitFor(t, ids, 15*time.Second)
	for range n {
		assert.GreaterOrEqual(t, recv(t, attempts, time.Second, "attempt"), 2, "a redelivery")
	}
}

// A handler slower than the ack wait keeps its event: gossip keeps it alive
// through the driver's KeepAlive (JetStream InProgress), so no other member
// gets it meanwhile.
func TestSlowHandlerKeepsItsEvent(t *testing.T) {
	p := prefix(t)
	cfg := gossip.Config{Driver: shared.URL() + "?prefix=" + p, AckWait: time.Second}
	calls := newLedger()
	slowDone := make(chan struct{})
	var slowID atomic.Value
	h := func(ctx context.Context, e *gossip.Event) error {
		calls.add(e.ID)
		if e.ID == slowID.Load() {
			t := time.NewTimer(2500 * time.Millisecond) // the slow work
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			select {
			case slowDone <- struct{}{}:
			default:
			}
		}
		return nil
	}
	for range 2 {
		_, err := newBus(t, cfg).Subscribe("slow", h, gossip.Group("g"))
		require.NoError(t, err)
	}
	pub := newBus(t, cfg)
	slow := gossip.NewEvent("slow", "slow")
	slowID.Store(slow.ID)
	require.NoError(t, pub.Publish(context.Background(), slow))
	recv(t, slowDone, 10*time.Second, "the slow handler to finish")
	marker := gossip.NewEvent("slow", "marker")
	require.NoError(t, pub.Publish(context.Background(), marker))
	calls.waitFor(t, []string{marker.ID}, 10*time.Second)
	calls.mu.Lock()
	defer calls.mu.Unlock()
	assert.Equal(t, 1, calls.ids[slow.ID], "the slow event was handled once, not redelivered while in progress")
}

// publisher publishes events one at a time until stopped, and records
// which Publish calls returned nil and which failed.
type publisher struct {
	confirmed *ledger
	failed    atomic.Int64
	failure   chan struct{}
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

func startPublisher(bus *gossip.EventBus, typ gossip.EventType) *publisher {
	p := &publisher{confirmed: newLedger(), failure: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			e := gossip.NewEvent(typ, i)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := bus.Publish(ctx, e)
			cancel()
			if err == nil {
				p.confirmed.add(e.ID)
				continue
			}
			p.failed.Add(1)
			select {
			case p.failure <- struct{}{}:
			default:
			}
			select { // do not spin while the server is away
			case <-p.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return p
}

// halt stops the publisher and waits for it; it may be called again.
func (p *publisher) halt() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// The server stops mid-stream and starts again on the same port and store:
// publishers see errors meanwhile, never a false success, and every event
// a Publish confirmed is handled.
func TestServerRestartLosesNoConfirmedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server: skipped with -short")
	}
	dir := t.TempDir()
	srv, err := natsserver.Start(natsserver.Options{Dir: dir})
	require.NoError(t, err)
	port := srv.Port()
	defer func() { srv.Shutdown() }()
	url := srv.URL() + "?prefix=" + prefix(t)

	handled := newLedger()
	sub := newBus(t, gossip.Config{Driver: url, AckWait: 2 * time.Second})
	_, err = sub.Subscribe("tick", handled.handler, gossip.Group("g"), gossip.Workers(4))
	require.NoError(t, err)
	p := startPublisher(newBus(t, gossip.Config{Driver: url}), "tick")
	defer p.halt()

	p.confirmed.waitN(t, 100, 15*time.Second)
	srv.Shutdown()
	recv(t, p.failure, 15*time.Second, "a publish to fail while the server is down")
	before := p.confirmed.len()

	srv, err = natsserver.Start(natsserver.Options{Dir: dir, Port: port})
	require.NoError(t, err)
	p.confirmed.waitN(t, before+100, 30*time.Second)
	p.halt()

	confirmed := p.confirmed.list()
	handled.waitFor(t, confirmed, 60*time.Second)
	t.Logf("confirmed %d, failed %d, handled %d distinct", len(confirmed), p.failed.Load(), handled.len())
}

// Three servers in a JetStream cluster, the stream replicated to all three;
// one node goes down mid-stream: every confirmed event is handled.
func TestClusterNodeLossLosesNoConfirmedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster: skipped with -short")
	}
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	servers := make([]*natsserver.Server, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = natsserver.Start(natsserver.Options{
				Name: fmt.Sprintf("n%d", i+1), Dir: t.TempDir(),
				Cluster: "gossip", ClusterPort: ports[i], Routes: routes,
				ReadyTimeout: 30 * time.Second,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "server n%d", i+1)
	}
	up := map[int]bool{0: true, 1: true, 2: true}
	defer func() {
		for i, s := range servers {
			if up[i] {
				s.Shutdown()
			}
		}
	}()
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL())
	}
	pre := prefix(t)
	url := strings.Join(urls, ",") + "?prefix=" + pre + "&replicas=3"
	waitForJetStreamCluster(t, urls[0])

	handled := newLedger()
	for range 2 {
		_, err := newBus(t, gossip.Config{Driver: url, AckWait: 2 * time.Second}).
			Subscribe("tick", handled.handler, gossip.Group("g"), gossip.Workers(4))
		require.NoError(t, err)
	}
	p := startPublisher(newBus(t, gossip.Config{Driver: url}), "tick")
	defer p.halt()
	p.confirmed.waitN(t, 100, 30*time.Second)

	// Take down the stream's leader: the hardest node to lose.
	victim := 0
	nc, err := natsgo.Connect(urls[0])
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if st, err := js.Stream(ctx, pre); err == nil && st.CachedInfo().Cluster != nil {
		for i, s := range servers {
			if s.Server().Name() == st.CachedInfo().Cluster.Leader {
				victim = i
			}
		}
	}
	cancel()
	nc.Close()
	before := p.confirmed.len()
	servers[victim].Shutdown()
	up[victim] = false
	t.Logf("shut down n%d (the stream leader) after %d confirmed events", victim+1, before)

	p.confirmed.waitN(t, before+100, 60*time.Second)
	p.halt()
	confirmed := p.confirmed.list()
	handled.waitFor(t, confirmed, 60*time.Second)
	t.Logf("confirmed %d, failed %d, handled %d distinct", len(confirmed), p.failed.Load(), handled.len())
	assert.GreaterOrEqual(t, handled.len(), len(confirmed))
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// waitForJetStreamCluster waits until the cluster can place a stream with
// three replicas: a meta leader is elected and every peer has joined.
func waitForJetStreamCluster(t *testing.T, url string) {
	nc, err := natsgo.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "probe", Subjects: []string{"probe.>"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		if err == nil {
			_ = js.DeleteStream(ctx, "probe")
			cancel()
			return
		}
		cancel()
		require.Truef(t, time.Now().Before(deadline), "JetStream cluster not ready: %v", err)
		<-tick.C
	}
}

// A consumer deleted under a live subscription (an operator, an inactive
// threshold) is made again, and events published afterwards still arrive.
func TestDeletedConsumerIsMadeAgain(t *testing.T) {
	p := prefix(t)
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p})
	group, bcast := newLedger(), newLedger()
	_, err := bus.Subscribe("x", group.handler, gossip.Group("g"))
	require.NoError(t, err)
	_, err = bus.Subscribe("x", bcast.handler)
	require.NoError(t, err)

	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.Stream(ctx, p)
	require.NoError(t, err)
	names := stream.ConsumerNames(ctx)
	var doomed []string
	for name := range names.Name() {
		doomed = append(doomed, name)
	}
	var deleted int
	for _, name := range doomed {
		require.NoError(t, js.DeleteConsumer(ctx, p, name))
		deleted++
	}
	require.Equal(t, 2, deleted)

	// Publish until both subscriptions have one: their consumers are back.
	deadline := time.Now().Add(20 * time.Second)
	for group.len() == 0 || bcast.len() == 0 {
		require.True(t, time.Now().Before(deadline), "no event arrived after the consumers were deleted")
		require.NoError(t, bus.Publish(ctx, gossip.NewEvent("x", 1)))
		select {
		case <-group.signal:
		case <-bcast.signal:
		case <-time.After(200 * time.Millisecond):
		}
	}
}
