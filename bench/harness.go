package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// PayloadSize is the size of every event's payload, in bytes.
const PayloadSize = 256

// Shape is who subscribes: Groups consumer groups (each gets every event)
// of Members competing members each. The zero Shape is one subscriber.
type Shape struct {
	Groups  int
	Members int
}

func (s Shape) groups() int  { return max(s.Groups, 1) }
func (s Shape) members() int { return max(s.Members, 1) }

// Receiver is called once per handled delivery with the event's payload.
type Receiver func(payload []byte)

// Pipe is one implementation's publisher with its subscribers already live.
type Pipe interface {
	// Publish sends a batch: one call of the implementation's publish API
	// (variadic where it has one), returning once the transport holds it.
	Publish(ctx context.Context, batch [][]byte) error
	Close() error
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
	CPU       time.Duration // process CPU (+ external server CPU) during the run
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

// CPUPerMillion is CPU seconds per million handled deliveries.
func (r Result) CPUPerMillion() float64 {
	if r.Handled == 0 {
		return 0
	}
	return r.CPU.Seconds() / float64(r.Handled) * 1e6
}

// Lost is what was published and never handled.
func (r Result) Lost() int64 {
	return max(r.Published*int64(max(r.Groups, 1))-r.Handled, 0)
}

var runCounter atomic.Int64

// extCPU adds the CPU time of servers outside this process (redis-server).
var extCPU func() time.Duration

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	d := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if extCPU != nil {
		d += extCPU()
	}
	return d
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
	recv := func(payload []byte) {
		if paced {
			now := time.Now().UnixNano()
			if seq := payloadSeq(payload); seq >= 0 && seq < len(sendNs) {
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
	cpu0 := cpuNow()
	t0 = time.Now()
	lastNs.Store(t0.UnixNano())
	for range p.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([][]byte, 0, p.Batch)
			for !stop.Load() {
				hi := next.Add(int64(p.Batch))
				lo := hi - int64(p.Batch)
				if lo >= int64(p.Events) {
					return
				}
				hi = min(hi, int64(p.Events))
				batch = batch[:0]
				for i := lo; i < hi; i++ {
					if paced {
						if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
							time.Sleep(d)
						}
						sendNs[i].Store(time.Now().UnixNano())
						batch = append(batch, makePayload(int(i)))
					} else {
						batch = append(batch, shared)
					}
				}
				if err := pipe.Publish(ctx, batch); err != nil {
					if !stop.Load() {
						pubErr.CompareAndSwap(nil, &err)
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
	res.CPU = cpuNow() - cpu0
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
