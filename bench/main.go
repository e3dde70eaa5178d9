// Command bench measures gossip side by side with the raw client on the
// same transport (the ceiling) and with Watermill's matching pub/sub (the
// peer), in one process run, alternating between them, on typed rows (a
// struct through gossip.NewEvent and gossip.Typed) and raw-bytes rows. It
// reports throughput, the client's CPU and allocations per event (the
// servers run in processes of their own), latency at a paced rate, and
// whether gossip meets the targets of issue 11. It starts its own servers
// (nats-server with JetStream, in a child process running this binary;
// a redis-server from PATH) on free loopback ports, prints markdown
// tables, and, unless -quick, rewrites the generated part of
// docs/performance.md and draws docs/performance.png.
//
//	go run .            # the full run: 3 repetitions (make bench)
//	go run . -quick     # fewer events, one repetition (make bench-quick)
//	go run . -only 'typed: NATS core' -impl gossip -cpuprofile cpu.out
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Implementation columns, in the order they alternate.
const (
	Raw = iota
	Gossip
	Watermill
	nImpl
)

var implNames = [nImpl]string{"raw", "gossip", "watermill"}

// Impl is one implementation of a scenario; a nil Open is "n/a" (or
// "pending") with Note saying why.
type Impl struct {
	Label string
	Open  Opener
	Note  string
}

// Target is what issue 11 asks of gossip in a scenario; Scenario.Latency
// adds p99 ≤ 1.5 × raw.
type Target struct {
	MinRate   float64 // events/s, absolute; 0: none
	MinRatio  float64 // gossip/raw in the same run; 0: none
	NoLoss    bool
	Watermill bool // not behind Watermill, and ≥ 1.5× it where raw is ≥ 1.5× it
	Broker    bool // client CPU per event ≤ 1.5 × raw, allocations ≤ raw + 15
}

// Scenario is one row of the table.
type Scenario struct {
	Name      string
	Typed     bool   // gossip and Watermill move a Payload struct; else raw bytes
	Transport string // the chart panel it belongs to; "" for none
	Impls     [nImpl]Impl
	Params    Params
	Target    Target
	Latency   bool // also measure latency at a paced rate
	NoTargets bool // not a row of issue 11's targets (the outbox rows)
	Cleanup   func()
	ServerCPU func() time.Duration // the CPU of the server process so far; nil in process
}

// Outcome is what the runs of one implementation of a scenario gave.
type Outcome struct {
	Runs      []Result
	Latencies []time.Duration
	Err       string
}

type config struct {
	quick      bool
	reps       int
	cap        time.Duration
	scale      float64
	latEvents  int
	latRate    int
	only       string
	impl       string
	write      bool
	docPath    string
	chartPath  string
	cpuprofile string
	natsInProc bool
}

func main() {
	var c config
	flag.BoolVar(&c.quick, "quick", false, "fewer events, one repetition, nothing written unless -write")
	reps := flag.Int("reps", 0, "repetitions (default 3, 1 with -quick)")
	flag.StringVar(&natsParams, "nats-params", "", "extra URL parameters for gossip's NATS driver, e.g. ack=async")
	flag.StringVar(&redisParams, "redis-params", "", "extra URL parameters for gossip's Redis driver")
	flag.IntVar(&gossipWorkers, "gossip-workers", 0, "gossip.Config.Workers for the gossip runs (default: the library's default)")
	flag.StringVar(&c.only, "only", "", "run only scenarios whose name contains this")
	flag.StringVar(&c.impl, "impl", "", "run only this implementation: raw, gossip or watermill")
	write := flag.Bool("write", false, "write docs/performance.md and the chart (the default without -quick)")
	flag.StringVar(&c.docPath, "doc", "../docs/performance.md", "the markdown file whose generated part is rewritten")
	flag.StringVar(&c.chartPath, "chart", "../docs/performance.png", "the chart image")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured runs here")
	flag.BoolVar(&c.natsInProc, "nats-embedded", false, "embed nats-server in the bench process (its CPU and allocations then count as the client's)")
	serveDir := flag.String("serve-nats", "", "internal: run nats-server with this store directory and print its URL")
	flag.Parse()
	if *serveDir != "" {
		if err := serveNATS(*serveDir); err != nil {
			fmt.Fprintln(os.Stderr, "bench: nats-server:", err)
			os.Exit(1)
		}
		return
	}
	c.write = *write || (!c.quick && c.only == "" && c.impl == "")
	c.reps, c.cap, c.scale, c.latEvents, c.latRate = 3, 1500*time.Millisecond, 1, 1000, 2000
	if c.quick {
		c.reps, c.cap, c.scale, c.latEvents = 1, 500*time.Millisecond, 0.2, 300
	}
	if *reps > 0 {
		c.reps = *reps
	}
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	if err := run(c); err != nil {
		log.Fatal(err)
	}
}

func run(c config) error {
	start := time.Now()
	ns, err := startNATS(c.natsInProc)
	if err != nil {
		return err
	}
	defer ns.Stop()
	var re *redisEnv
	rs, rerr := startRedis()
	if rerr == nil {
		defer rs.Stop()
		re = &redisEnv{srv: rs}
	} else {
		log.Printf("no Redis rows: %v", rerr)
	}
	ne := &natsEnv{url: ns.URL}
	if !ns.Embedded() {
		ne.cpu = ns.CPU
	}
	scenarios := append(append(buildScenarios(ne, re, c), orderingScenarios(ne, re)...), outboxScenarios()...)
	if c.only != "" {
		scenarios = slices.DeleteFunc(scenarios, func(s *Scenario) bool { return !strings.Contains(s.Name, c.only) })
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	outcomes := make([][nImpl]*Outcome, len(scenarios))
	for i, s := range scenarios {
		outcomes[i] = runScenario(s, c)
	}
	rep := &report{cfg: c, scenarios: scenarios, outcomes: outcomes, took: time.Since(start), nats: ns}
	if rs != nil {
		rep.redisVersion = redisVersion()
	}
	md := rep.tables()
	fmt.Println(md)
	if c.write {
		if err := rep.writeDoc(c.docPath, md); err != nil {
			return err
		}
		if err := drawChart(c.chartPath, scenarios, outcomes); err != nil {
			return err
		}
		log.Printf("wrote %s and %s", c.docPath, c.chartPath)
	}
	log.Printf("done in %s", time.Since(start).Round(time.Second))
	return nil
}

// runScenario alternates the implementations, rep times, then measures
// latency the same way when the scenario asks for it.
func runScenario(s *Scenario, c config) [nImpl]*Outcome {
	var out [nImpl]*Outcome
	for i := range out {
		out[i] = &Outcome{}
	}
	serverCPU = s.ServerCPU
	defer func() { serverCPU = nil }()
	skip := func(i int) bool {
		if c.impl != "" && implNames[i] != c.impl {
			return true
		}
		return s.Impls[i].Open == nil || out[i].Err != ""
	}
	one := func(i int, p Params) (Result, bool) {
		r, err := Measure(s.Impls[i].Open, p)
		if s.Cleanup != nil {
			s.Cleanup()
		}
		if err != nil {
			if err == errPending || err == errNotApplicable {
				out[i].Err = err.Error()
			} else {
				out[i].Err = err.Error()
				log.Printf("%s / %s: %v", s.Name, implNames[i], err)
			}
			return r, false
		}
		return r, true
	}
	for rep := range c.reps {
		for i := range nImpl {
			if skip(i) {
				continue
			}
			p := s.Params
			p.Cap = c.cap
			p.Events = max(int(float64(p.Events)*c.scale), 100)
			if r, ok := one(i, p); ok {
				out[i].Runs = append(out[i].Runs, r)
				log.Printf("%-46s %-9s rep %d: %12s  client %7.2f µs/event %6.1f allocs/event, server %7.2f µs/event%s",
					s.Name, implNames[i], rep+1, fmtRate(r.Rate()), r.CPUMicros(), r.AllocsPerEvent(), r.ServerCPUMicros(), runNote(r))
			}
		}
		if !s.Latency {
			continue
		}
		for i := range nImpl {
			if skip(i) {
				continue
			}
			p := Params{Events: c.latEvents, Publishers: 1, Batch: 1, Rate: c.latRate, Shape: s.Params.Shape,
				Cap: time.Duration(c.latEvents)*time.Second/time.Duration(c.latRate) + time.Second}
			if r, ok := one(i, p); ok {
				out[i].Latencies = append(out[i].Latencies, r.Latencies...)
			}
		}
	}
	return out
}

func runNote(r Result) string {
	var n string
	if r.Capped {
		n += fmt.Sprintf("  (capped: %d of %d)", r.Handled, r.Expected)
	}
	if l := r.Lost(); l > 0 && !r.Capped {
		n += fmt.Sprintf("  (lost %d)", l)
	}
	return n
}
