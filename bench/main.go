// Command bench measures gossip side by side with the raw client on the
// same transport (the ceiling) and with Watermill's matching pub/sub (the
// peer), in one process run, alternating between them. It starts its own
// servers (an embedded nats-server with JetStream, a redis-server from
// PATH) on free loopback ports, prints a markdown table, and, unless
// -quick, rewrites the generated part of docs/performance.md and draws
// docs/performance.png.
//
//	go run .            # the full run: 3 repetitions (make bench)
//	go run . -quick     # fewer events, one repetition (make bench-quick)
//	go run . -only 'NATS core' -impl gossip -cpuprofile cpu.out
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

// Target is what the issue asks of gossip in a scenario.
type Target struct {
	MinRate  float64 // events/s, absolute; 0: none
	MinRatio float64 // gossip/raw in the same run; 0: none
	NoLoss   bool
}

func (t Target) String() string {
	var parts []string
	if t.MinRate > 0 {
		parts = append(parts, "≥ "+fmtRate(t.MinRate))
	}
	if t.MinRatio > 0 {
		parts = append(parts, fmt.Sprintf("≥ %.0f %% of raw", t.MinRatio*100))
	}
	if t.NoLoss {
		parts = append(parts, "none lost")
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// Scenario is one row of the table.
type Scenario struct {
	Name      string
	Transport string // the chart panel it belongs to; "" for none
	Impls     [nImpl]Impl
	Params    Params
	Target    Target
	Latency   bool // also measure latency at a paced rate
	Cleanup   func()
	ExtCPU    func() time.Duration // CPU of a server outside this process
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
	flag.Parse()
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
	ns, err := startNATS()
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
	scenarios := buildScenarios(&natsEnv{url: ns.URL}, re, c)
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
	rep := &report{cfg: c, scenarios: scenarios, outcomes: outcomes, took: time.Since(start), natsURL: ns.URL}
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
	extCPU = s.ExtCPU
	defer func() { extCPU = nil }()
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
				log.Printf("%-40s %-9s rep %d: %12s  %6.2f CPU s/M%s", s.Name, implNames[i], rep+1,
					fmtRate(r.Rate()), r.CPUPerMillion(), runNote(r))
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
