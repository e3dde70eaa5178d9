package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// PayloadSize is the size of every raw event's payload, in bytes; the typed
// rows' Payload encodes to about as many bytes of JSON.
const PayloadSize = 256

// Payload is the typed rows' event: the kind of struct a service publishes
// with gossip.NewEvent and handles with gossip.Typed. Seq is the event's
// number (0 unless paced), for latency.
type Payload struct {
	Seq       int      `json:"seq"`
	UserID    string   `json:"user_id"`
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	Plan      string   `json:"plan"`
	Tags      []string `json:"tags"`
	Score     float64  `json:"score"`
	Active    bool     `json:"active"`
	CreatedAt int64    `json:"created_at"`
	Note      string   `json:"note"`
}

// samplePayload encodes to 256 bytes of JSON with Seq 0 (262 with a
// six-digit Seq).
var samplePayload = Payload{
	UserID: "0199c0de-7a1b-7c3d-9e4f-a0b1c2d3e4f5", Email: "ada.lovelace@example.com",
	Name: "Ada Lovelace", Plan: "enterprise", Tags: []string{"beta", "eu-west", "vip"},
	Score: 98.6, Active: true, CreatedAt: 1767225600, Note: "first user of the engine, eu",
}

// Shape is who subscribes: Groups consumer groups (each gets every event)
// of Members competing members each. The zero Shape is one subscriber.
type Shape struct {
	Groups  int
	Members int
}

func (s Shape) groups() int  { return max(s.Groups, 1) }
func (s Shape) members() int { return max(s.Members, 1) }

// Receiver is called once per handled delivery: with the raw payload and
// seq -1 (the harness reads the number from the payload when it needs it),
// or with a typed Payload's Seq and no bytes.
type Receiver func(payload []byte, seq int)

// Pipe is one implementation's publisher with its subscribers already live.
// It is a BytesPipe or a ValuePipe.
type Pipe interface {
	Close() error
}

// BytesPipe publishes pre-encoded PayloadSize-byte payloads.
type BytesPipe interface {
	Pipe
	// Publish sends a batch: one call of the implementation's publish API
	// (variadic where it has one), returning once the transport holds it.
	Publish(ctx context.Context, batch [][]byte) error
}

// ValuePipe publishes Payload values (the typed rows), encoding them as its
// user would.
type ValuePipe interface {
	Pipe
	// PublishValues is Publish for Payload values.
	PublishValues(ctx context.Context, batch []Payload) error
}

// Opener connects an implementation, subscribes in the given shape and
// returns its Pipe. Run is a unique number a run may use to name its
// subjects, streams and keys.
type Opener func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error)

// Params bound one measured run.
type Params struct {
	Events     int           // events to publish
	Publishers int           // concurrent publishing goroutines
	Batch      int           // events per Publish call
	Cap        time.Duration // the run stops here, whatever is left
	Rate       int           // events/s when paced (latency runs); 0: as fast as possible
	Shape      Shape
}

// Result is one measured run.
type Result struct {
	Published int64
	Handled   int64
	Expected  int64
	Groups    int
	Elapsed   time.Duration
	CPU       time.Duration // the bench process's CPU during the run (the clients; the server too when embedded)
	ServerCPU time.Duration // the server process's CPU during the run; 0 in process or when embedded
	Allocs    uint64        // heap allocations in the bench process during the run
	Capped    bool          // the time cap ended the run
	Latencies []time.Duration
}

// Rate is handled deliveries per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Handled) / r.Elapsed.Seconds()
}

// perEvent divides x by the handled deliveries.
func (r Result) perEvent(x float64) float64 {
	if r.Handled == 0 {
		return 0
	}
	return x / float64(r.Handled)
}

// CPUMicros is the client CPU per handled delivery, in µs.
func (r Result) CPUMicros() float64 { return r.perEvent(float64(r.CPU) / 1e3) }

// ServerCPUMicros is the server's CPU per handled delivery, in µs.
func (r Result) ServerCPUMicros() float64 { return r.perEvent(float64(r.ServerCPU) / 1e3) }

// AllocsPerEvent is the bench process's heap allocations per handled
// delivery.
func (r Result) AllocsPerEvent() float64 { return r.perEvent(float64(r.Allocs)) }

// Lost is what was published and never handled.
func (r Result) Lost() int64 {
	return max(r.Published*int64(max(r.Groups, 1))-r.Handled, 0)
}

var runCounter atomic.Int64

// serverCPU reads the CPU time of the scenario's server process
// (redis-server, nats-server in its own process); nil for none.
var serverCPU func() time.Duration

// usage is a reading of the process's CPU, the server's and the
// allocations so far.
type usage struct {
	cpu, server time.Duration
	allocs      uint64
}

var allocSamples = []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}}

func usageNow() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	if serverCPU != nil {
		u.server = serverCPU()
	}
	// Both counters, as runtime.MemStats.Mallocs counts them, without
	// stopping the world.
	metrics.Read(allocSamples)
	for _, s := range allocSamples {
		if s.Value.Kind() == metrics.KindUint64 {
			u.allocs += s.Value.Uint64()
		}
	}
	return u
}

// makePayload returns a PayloadSize-byte JSON string whose first characters
// after the quote carry seq in decimal, so that every implementation moves
// the same bytes and gossip's JSON codec passes them through.
func makePayload(seq int) []byte {
	b := make([]byte, PayloadSize)
	b[0] = '"'
	for i := 1; i < PayloadSize-1; i++ {
		b[i] = 'x'
	}
	b[PayloadSize-1] = '"'
	s := fmt.Appendf(nil, "%010d", seq)
	copy(b[1:], s)
	return b
}

func payloadSeq(p []byte) int {
	if len(p) < 11 {
		return -1
	}
	n := 0
	for _, c := range p[1:11] {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Measure opens the implementation, publishes p.Events, and measures until
// every expected delivery was handled, the deliveries stop coming after the
// publishers finished (a lossy transport), or p.Cap.
func Measure(open Opener, p Params) (Result, error) {
	p.Publishers = max(p.Publishers, 1)
	p.Batch = max(p.Batch, 1)
	expected := int64(p.Events) * int64(p.Shape.groups())
	var (
		handled  atomic.Int64
		lastNs   atomic.Int64 // progress clock, sampled every 256 deliveries
		done     = make(chan struct{})
		doneOnce sync.Once
		t0       time.Time
		sendNs   []atomic.Int64
		latMu    sync.Mutex
		lat      []time.Duration
	)
	paced := p.Rate > 0
	if paced {
		sendNs = make([]atomic.Int64, p.Events)
		lat = make([]time.Duration, 0, expected)
	}
	recv := func(payload []byte, seq int) {
		if paced {
			now := time.Now().UnixNano()
			if seq < 0 {
				seq = payloadSeq(payload)
			}
			if seq >= 0 && seq < len(sendNs) {
				d := time.Duration(now - sendNs[seq].Load())
				latMu.Lock()
				lat = append(lat, d)
				latMu.Unlock()
			}
		}
		n := handled.Add(1)
		if n&255 == 0 {
			lastNs.Store(time.Now().UnixNano())
		}
		if n == expected {
			doneOnce.Do(func() { close(done) })
		}
	}
	setupCtx, cancelSetup := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelSetup()
	run := int(runCounter.Add(1))
	pipe, err := open(setupCtx, run, p.Shape, recv)
	if err != nil {
		return Result{}, err
	}
	bytesPipe, _ := pipe.(BytesPipe)
	valuePipe, _ := pipe.(ValuePipe)
	if bytesPipe == nil && valuePipe == nil {
		pipe.Close()
		return Result{}, fmt.Errorf("%T publishes neither bytes nor values", pipe)
	}
	closePipe := func() error {
		errc := make(chan error, 1)
		go func() { errc <- pipe.Close() }()
		select {
		case err := <-errc:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("close did not return within 15s")
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		next      atomic.Int64
		published atomic.Int64
		stop      atomic.Bool
		pubErr    atomic.Pointer[error]
		wg        sync.WaitGroup
	)
	shared := makePayload(0)
	interval := time.Duration(0)
	if paced {
		interval = time.Second / time.Duration(p.Rate)
	}
	u0 := usageNow()
	t0 = time.Now()
	lastNs.Store(t0.UnixNano())
	for range p.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([][]byte, 0, p.Batch)
			values := make([]Payload, 0, p.Batch)
			for !stop.Load() {
				hi := next.Add(int64(p.Batch))
				lo := hi - int64(p.Batch)
				if lo >= int64(p.Events) {
					return
				}
				hi = min(hi, int64(p.Events))
				batch, values = batch[:0], values[:0]
				for i := lo; i < hi; i++ {
					if paced {
						if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
							time.Sleep(d)
						}
						sendNs[i].Store(time.Now().UnixNano())
					}
					switch {
					case valuePipe != nil:
						v := samplePayload
						if paced {
							v.Seq = int(i)
						}
						values = append(values, v)
					case paced:
						batch = append(batch, makePayload(int(i)))
					default:
						batch = append(batch, shared)
					}
				}
				var err error
				if valuePipe != nil {
					err = valuePipe.PublishValues(ctx, values)
				} else {
					err = bytesPipe.Publish(ctx, batch)
				}
				if err != nil {
					if !stop.Load() {
						failed := err // &err would move err to the heap on every call
						pubErr.CompareAndSwap(nil, &failed)
						stop.Store(true)
					}
					return
				}
				published.Add(hi - lo)
			}
		}()
	}
	pubDone := make(chan struct{})
	go func() { wg.Wait(); close(pubDone) }()

	res := Result{Expected: expected, Groups: p.Shape.groups()}
	capTimer := time.NewTimer(p.Cap)
	defer capTimer.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var end time.Time
	publishersDone := false
	idleSince := time.Time{}
	lastSeen := int64(-1)
wait:
	for {
		select {
		case <-done:
			end = time.Now()
			break wait
		case <-capTimer.C:
			end = time.Now()
			res.Capped = true
			break wait
		case <-pubDone:
			publishersDone = true
			pubDone = nil
		case now := <-tick.C:
			if pubErr.Load() != nil {
				end = now
				break wait
			}
			// A lossy transport: the publishers are done and nothing has
			// arrived for a while. The run ended at the last progress.
			h := handled.Load()
			if publishersDone && h == lastSeen {
				if idleSince.IsZero() {
					idleSince = now
				} else if now.Sub(idleSince) > 300*time.Millisecond {
					end = time.Unix(0, lastNs.Load())
					break wait
				}
			} else {
				idleSince = time.Time{}
			}
			lastSeen = h
		}
	}
	res.Handled = handled.Load()
	u1 := usageNow()
	res.CPU, res.ServerCPU, res.Allocs = u1.cpu-u0.cpu, u1.server-u0.server, u1.allocs-u0.allocs
	stop.Store(true)
	cancel()
	res.Elapsed = end.Sub(t0)
	<-waitTimeout(&wg, 10*time.Second)
	res.Published = published.Load()
	if paced {
		latMu.Lock()
		res.Latencies = slices.Clone(lat)
		latMu.Unlock()
	}
	cerr := closePipe()
	if e := pubErr.Load(); e != nil {
		return res, fmt.Errorf("publish: %w", *e)
	}
	if cerr != nil {
		// The measurement stands; a failed close is worth knowing.
		log.Printf("close after run %d: %v", run, cerr)
	}
	return res, nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	out := make(chan struct{})
	go func() {
		select {
		case <-c:
		case <-time.After(d):
		}
		close(out)
	}()
	return out
}
