package soak

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	_ "github.com/gossipbus/gossip/drivers/nats"
	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// The load: publishers × perPublisher events, paced at one event per
// publisher every pace, consumed by a group of members whose handlers take
// handleTime each: about 320 events/s against 500 published, so a backlog
// (in the stream and in the members' prefetch buffers) is there when the
// fault strikes, and what the server held must come back after it.
const (
	publishers   = 2
	perPublisher = 2000
	pace         = 4 * time.Millisecond // 500 events/s in all: about 8 s of publishing
	members      = 2
	workers      = 4
	bufferSize   = 100 // prefetch per member: the rest of the backlog stays on the server
	handleTime   = 25 * time.Millisecond
	total        = publishers * perPublisher
	ackWait      = 2 * time.Second // short, so unacked deliveries come back during the run
	freezeFor    = 5 * time.Second
	downFor      = 2 * time.Second // between the kill and the start: clients see the outage
)

// Bounds of the waits; the whole test stays well under 3 minutes on two
// shared cores.
const (
	publishBound  = 60 * time.Second // every event confirmed, outage included
	attemptBound  = 3 * time.Second  // one Publish call
	drainBound    = 60 * time.Second // every confirmed event handled, after the last publish
	shutdownBound = 20 * time.Second
	// heapSlack is how much more heap (in use, after GC) than before the run
	// is still "back": the runtime's and the race detector's own caches
	// move by a few hundred KiB between runs; a leaked subscription's buffers
	// or the run's 4000 events would be several MiB.
	heapSlack = 2 << 20
)

const eventType gossip.EventType = "soak.tick"

// tick is a soak event's payload.
type tick struct {
	Publisher int `json:"publisher"`
	Seq       int `json:"seq"`
}

// A transport under test: start runs its server (nil for memory); url is
// the bus's driver URL on it.
type transport struct {
	name  string
	start func(t *testing.T) *server
	url   func(s *server) string
}

// A fault done to the server while events flow; it returns what the
// outage was, for the log.
type fault struct {
	name string
	do   func(s *server) (string, error)
}

var (
	restart = fault{"restart", func(s *server) (string, error) {
		began := time.Now()
		old := s.cmd.Process.Pid
		err := s.restart(downFor)
		return fmt.Sprintf("SIGKILL (pid %d), start again after %v (pid %d): down %v",
			old, downFor, s.cmd.Process.Pid, time.Since(began).Round(time.Millisecond)), err
	}}
	freeze = fault{"freeze", func(s *server) (string, error) {
		return fmt.Sprintf("SIGSTOP for %v, then SIGCONT", freezeFor), s.freeze(freezeFor)
	}}
)

// TestSoak publishes and consumes on every transport through a server
// restart and a 5 s freeze: no event whose Publish returned nil is lost,
// and Shutdown gives back every goroutine and the heap.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak takes a minute or two")
	}
	t.Run("memory", func(t *testing.T) {
		// No server to restart or stop: the load alone, through a named
		// broker shared by the publishing bus and the group's members.
		soak(t, transport{name: "memory", url: func(*server) string {
			return fmt.Sprintf("memory://soak-%d", time.Now().UnixNano())
		}}, fault{})
	})
	redis := transport{name: "redis", start: startRedis, url: func(s *server) string {
		return fmt.Sprintf("redis://:%s@%s/0?prefix=soak", password, s.addr())
	}}
	nats := transport{name: "nats", start: startNATS, url: func(s *server) string {
		return fmt.Sprintf("nats://soak:%s@%s?prefix=soak", password, s.addr())
	}}
	for _, tr := range []transport{redis, nats} {
		t.Run(tr.name, func(t *testing.T) {
			for _, f := range []fault{restart, freeze} {
				t.Run(f.name, func(t *testing.T) { soak(t, tr, f) })
			}
		})
	}
}

// footprint is what the process holds: goroutines, and heap in use after a
// collection.
type footprint struct {
	goroutines int
	heap       uint64
}

func measure() footprint {
	runtime.GC()
	runtime.GC() // the second one frees what the first one's finalizers let go
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return footprint{runtime.NumGoroutine(), m.HeapInuse}
}

func (f footprint) String() string {
	return fmt.Sprintf("%d goroutines, heap %.1f MiB", f.goroutines, float64(f.heap)/(1<<20))
}

// soak runs one scenario: a server of its own (unless memory), the load
// and the fault, then the checks.
func soak(t *testing.T, tr transport, f fault) {
	var srv *server
	if tr.start != nil {
		srv = tr.start(t)
	}
	ignore := goleak.IgnoreCurrent()
	before := measure()

	r := run(t, tr.url(srv), srv, f)
	r.log(t, tr.name) // on a failed run too
	if t.Failed() {
		return
	}

	// Goroutines: every one the run started has ended (goleak retries for
	// a while), but for the server's own wait goroutine if it restarted.
	if err := goleak.Find(ignore, goleak.IgnoreAnyFunction("github.com/gossipbus/gossip/tests/soak.(*server).start.func1")); err != nil {
		t.Errorf("goroutines left after Shutdown: %v", err)
	}
	after := measure() // every goroutine of the run has ended: what it held is garbage
	if after.heap > before.heap+heapSlack {
		t.Errorf("heap not back after Shutdown: %.1f MiB in use, %.1f MiB before the run (slack %d MiB)",
			float64(after.heap)/(1<<20), float64(before.heap)/(1<<20), heapSlack>>20)
	}
	t.Logf("%s: before the run %v; after Shutdown %v", tr.name, before, after)
}

// result is what a run counted; the IDs themselves stay inside run, so they
// are garbage when the heap is measured.
type result struct {
	confirmed, publishErrors                          int
	handled, distinct, duplicates, unconfirmedHandled int
	deadLetters, logLines                             int
	outage                                            string
	publishTime, drainTime, shutdownTime              time.Duration
}

func (r result) log(t *testing.T, name string) {
	t.Logf("%s: %d published by %d publishers, %d confirmed (%d publish errors, retried); "+
		"%d handled by %d members: %d distinct, %d duplicates, %d handled but never confirmed, %d dead letters",
		name, total, publishers, r.confirmed, r.publishErrors,
		r.handled, members, r.distinct, r.duplicates, r.unconfirmedHandled, r.deadLetters)
	if r.outage != "" {
		t.Logf("%s: fault: %s", name, r.outage)
	}
	t.Logf("%s: publishing %v, drain (until every confirmed event was handled) %v, shutdown %v; %d driver log lines",
		name, r.publishTime.Round(time.Millisecond), r.drainTime.Round(time.Millisecond),
		r.shutdownTime.Round(time.Millisecond), r.logLines)
}

// run opens a publishing bus and a group of members on url, publishes the
// load while doing f to srv, waits for every confirmed event to be handled
// and shuts everything down.
func run(t *testing.T, url string, srv *server, f fault) result {
	logs := newLogSink(t)
	open := func(source string) *gossip.EventBus {
		b, err := gossip.NewEventBus(&gossip.Config{
			Driver: url, Source: source, Logger: logs.logger(),
			BufferSize: bufferSize, AckWait: ackWait, DialTimeout: 5 * time.Second,
			RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("open a bus: %v", err)
		}
		return b
	}
	var buses []*gossip.EventBus
	var shutdownTime time.Duration
	shutdown := func() {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
		defer cancel()
		for _, b := range buses {
			if err := b.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
		shutdownTime = time.Since(began)
		buses = nil
	}
	defer shutdown() // on a failed run too, so nothing outlives the test

	handled := newLedger()
	var deadLetters atomic.Int64
	for i := range members {
		b := open(fmt.Sprintf("soak-member-%d", i))
		buses = append(buses, b)
		if _, err := b.Subscribe(eventType, handled.handler, gossip.Group("soak"), gossip.Workers(workers)); err != nil {
			t.Fatalf("subscribe member %d: %v", i, err)
		}
		if _, err := b.Subscribe(gossip.DeadLetterType("soak", eventType), func(context.Context, *gossip.Event) error {
			deadLetters.Add(1)
			return nil
		}, gossip.Group("soak-dead-letters")); err != nil {
			t.Fatalf("subscribe to dead letters: %v", err)
		}
	}
	pub := open("soak-publisher")
	buses = append(buses, pub)

	ctx, cancel := context.WithTimeout(context.Background(), publishBound)
	defer cancel()
	began := time.Now()
	p := startPublishing(ctx, pub)

	var outage string
	if f.do != nil {
		if !p.waitConfirmed(total/3, publishBound) {
			t.Fatalf("a third of the events was not confirmed within %v (%d confirmed)", publishBound, p.count())
		}
		t.Logf("the fault strikes with %d events confirmed, %d handled", p.count(), handled.distinct())
		var err error
		if outage, err = f.do(srv); err != nil {
			t.Fatalf("%s the server: %v", f.name, err)
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Fatalf("publishing did not end within %v: %d of %d confirmed", publishBound, p.count(), total)
	}
	publishTime := time.Since(began)
	confirmed, publishErrors, errs := p.results()
	for _, e := range errs {
		t.Logf("a publish error: %s", e)
		if strings.Contains(e, password) {
			t.Errorf("a publish error shows the server's password")
		}
	}
	if len(confirmed) != total {
		t.Errorf("%d of %d events confirmed: publishing did not recover within %v", len(confirmed), total, publishBound)
	}

	lastPublish := time.Now()
	if missing := handled.waitFor(confirmed, drainBound); len(missing) > 0 {
		t.Errorf("lost: %d of %d confirmed events not handled within %v of the last publish, e.g. %v",
			len(missing), len(confirmed), drainBound, missing[:min(5, len(missing))])
	}
	drainTime := time.Since(lastPublish)
	shutdown()
	logs.close()

	r := result{
		confirmed: len(confirmed), publishErrors: publishErrors,
		deadLetters: int(deadLetters.Load()), logLines: logs.count(),
		outage: outage, publishTime: publishTime, drainTime: drainTime, shutdownTime: shutdownTime,
	}
	r.handled, r.distinct, r.duplicates, r.unconfirmedHandled = handled.tally(confirmed)
	if r.deadLetters > 0 {
		t.Errorf("%d soak events were dead-lettered: every handler call succeeds on its second attempt", r.deadLetters)
	}
	return r
}

// ledger records every handled event by ID.
type ledger struct {
	mu      sync.Mutex
	seen    map[string]int
	changed chan struct{} // a value after each change
}

func newLedger() *ledger {
	return &ledger{seen: map[string]int{}, changed: make(chan struct{}, 1)}
}

var errFirstAttempt = errors.New("soak: every 50th event fails its first attempt")

// handler handles a soak event in handleTime; every 50th fails its first
// attempt, so redelivery runs through the faults too.
func (l *ledger) handler(ctx context.Context, e *gossip.Event) error {
	var tk tick
	if err := e.Decode(&tk); err != nil {
		return gossip.Permanent(err)
	}
	work := time.NewTimer(handleTime) // the handler's work
	defer work.Stop()
	select {
	case <-work.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if tk.Seq%50 == 0 && e.Attempt() == 1 {
		return errFirstAttempt
	}
	l.mu.Lock()
	l.seen[e.ID]++
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return nil
}

func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// waitFor waits until every id was handled, at most bound; it returns the
// ones that were not.
func (l *ledger) waitFor(ids []string, bound time.Duration) []string {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	missing := ids
	for {
		l.mu.Lock()
		missing = slices.DeleteFunc(slices.Clone(missing), func(id string) bool { return l.seen[id] > 0 })
		l.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-l.changed:
		case <-deadline.C:
			return missing
		}
	}
}

// tally counts handler calls that succeeded, distinct IDs among them, the
// duplicates, and the IDs handled that no Publish confirmed (a Publish that
// failed after the server had stored the event).
func (l *ledger) tally(confirmed []string) (handled, distinct, duplicates, unconfirmed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := make(map[string]bool, len(confirmed))
	for _, id := range confirmed {
		want[id] = true
	}
	for id, n := range l.seen {
		handled += n
		distinct++
		duplicates += n - 1
		if !want[id] {
			unconfirmed++
		}
	}
	return
}

// publishing is the publishers' shared record.
type publishing struct {
	mu        sync.Mutex
	confirmed []string
	errors    int
	messages  []string      // the first distinct error messages
	progress  chan struct{} // a value after each confirmation
	done      chan struct{} // closed when every publisher has ended
}

// startPublishing runs the publishers: each publishes perPublisher events,
// one per pace, retrying a failed Publish of an event (same ID) with a
// backoff until ctx ends.
func startPublishing(ctx context.Context, pub *gossip.EventBus) *publishing {
	p := &publishing{progress: make(chan struct{}, 1), done: make(chan struct{})}
	backoff := driver.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}
	var wg sync.WaitGroup
	for n := range publishers {
		wg.Go(func() {
			rate := time.NewTicker(pace)
			defer rate.Stop()
			for seq := range perPublisher {
				select {
				case <-rate.C:
				case <-ctx.Done():
					return
				}
				e := gossip.NewEvent(eventType, tick{Publisher: n, Seq: seq})
				for attempt := 1; ; attempt++ {
					actx, cancel := context.WithTimeout(ctx, attemptBound)
					err := pub.Publish(actx, e)
					cancel()
					p.record(e.ID, err)
					if err == nil {
						break
					}
					if !backoff.Wait(ctx, attempt) {
						return
					}
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
	return p
}

func (p *publishing) record(id string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errors++
		if msg := err.Error(); len(p.messages) < 5 && !slices.Contains(p.messages, msg) {
			p.messages = append(p.messages, msg)
		}
		return
	}
	p.confirmed = append(p.confirmed, id)
	select {
	case p.progress <- struct{}{}:
	default:
	}
}

func (p *publishing) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.confirmed)
}

// waitConfirmed waits until n events are confirmed, at most bound.
func (p *publishing) waitConfirmed(n int, bound time.Duration) bool {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for p.count() < n {
		select {
		case <-p.progress:
		case <-deadline.C:
			return false
		}
	}
	return true
}

func (p *publishing) results() (confirmed []string, errors int, messages []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.confirmed), p.errors, slices.Clone(p.messages)
}
