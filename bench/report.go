package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

type report struct {
	cfg          config
	scenarios    []*Scenario
	outcomes     [][nImpl]*Outcome
	took         time.Duration
	nats         *natsServer
	redisVersion string
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f M/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1f k/s", r/1e3)
	default:
		return fmt.Sprintf("%.0f /s", r)
	}
}

func fmtRateBare(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1f", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}

// inUnitOf formats r in the unit fmtRate picks for ref, without the unit.
func inUnitOf(r, ref float64) string {
	switch {
	case ref >= 1e6:
		return fmt.Sprintf("%.2f", r/1e6)
	case ref >= 1e3:
		return fmt.Sprintf("%.1f", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (o *Outcome) rates() []float64 {
	var r []float64
	for _, x := range o.Runs {
		r = append(r, x.Rate())
	}
	return r
}

// Median is the median throughput, 0 when nothing ran.
func (o *Outcome) Median() float64 { return median(o.rates()) }

// perEvent is the median over the runs of f.
func (o *Outcome) perEvent(f func(Result) float64) float64 {
	var r []float64
	for _, x := range o.Runs {
		r = append(r, f(x))
	}
	return median(r)
}

func (o *Outcome) cpu() float64       { return o.perEvent(Result.CPUMicros) }
func (o *Outcome) serverCPU() float64 { return o.perEvent(Result.ServerCPUMicros) }
func (o *Outcome) allocs() float64    { return o.perEvent(Result.AllocsPerEvent) }

func (o *Outcome) lost() (lost, published int64) {
	for _, x := range o.Runs {
		if !x.Capped {
			lost += x.Lost()
		}
		published += x.Published * int64(max(x.Groups, 1))
	}
	return
}

func (o *Outcome) capped() int {
	n := 0
	for _, x := range o.Runs {
		if x.Capped {
			n++
		}
	}
	return n
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func fmtMicros(d time.Duration) string {
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

func missing(s *Scenario, o *Outcome, i int) string {
	switch {
	case s.Impls[i].Open == nil || o.Err == errNotApplicable.Error():
		return "n/a"
	case o.Err == errPending.Error():
		return "pending"
	case o.Err != "":
		return "error"
	}
	return "not run"
}

func (rep *report) cell(s *Scenario, o *Outcome, i int) string {
	if len(o.Runs) == 0 {
		return missing(s, o, i)
	}
	r := o.rates()
	c := fmtRate(median(r))
	if len(r) > 1 {
		c += fmt.Sprintf(" (%s–%s)", inUnitOf(slices.Min(r), median(r)), inUnitOf(slices.Max(r), median(r)))
	}
	return c
}

func ratio(a, b *Outcome) string {
	if len(a.Runs) == 0 || len(b.Runs) == 0 || b.Median() == 0 {
		return "—"
	}
	x := a.Median() / b.Median()
	if x >= 10 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// verdict is a targets-table cell: what was measured, the target, and by
// how much it was missed.
func verdict(ok bool, got, want, miss string) string {
	if ok {
		return fmt.Sprintf("yes: %s (%s)", got, want)
	}
	return fmt.Sprintf("**no**: %s (%s; %s)", got, want, miss)
}

// targetCells checks gossip against the scenario's targets: rate (against
// raw or absolute), against Watermill, p99 against raw, client CPU and
// allocations against raw. met and total count the targets checked.
func (rep *report) targetCells(s *Scenario, out [nImpl]*Outcome) (cells [5]string, met, total int) {
	g, r, w := out[Gossip], out[Raw], out[Watermill]
	t := s.Target
	for i := range cells {
		cells[i] = "—"
	}
	if len(g.Runs) == 0 {
		for i := range cells {
			cells[i] = missing(s, g, Gossip)
		}
		return
	}
	add := func(i int, ok bool, got, want, miss string) {
		cells[i] = verdict(ok, got, want, miss)
		total++
		if ok {
			met++
		}
	}
	haveRaw := len(r.Runs) > 0 && r.Median() > 0
	lost := ""
	if l, _ := g.lost(); t.NoLoss && l > 0 {
		lost = fmt.Sprintf(", lost %d", l)
	}
	switch {
	case t.MinRate > 0:
		x := g.Median()
		add(0, x >= t.MinRate && lost == "", fmtRate(x)+lost, "≥ "+fmtRate(t.MinRate), fmt.Sprintf("%.0f %% short", (1-x/t.MinRate)*100))
	case t.MinRatio > 0 && haveRaw:
		x := g.Median() / r.Median()
		add(0, x >= t.MinRatio && lost == "", fmt.Sprintf("%.2f × raw%s", x, lost), fmt.Sprintf("≥ %.1f", t.MinRatio), fmt.Sprintf("%.0f %% short", (1-x/t.MinRatio)*100))
	}
	if t.Watermill && len(w.Runs) > 0 && w.Median() > 0 {
		x, rx := g.Median()/w.Median(), 0.0
		if haveRaw {
			rx = r.Median() / w.Median()
		}
		need := 1.0
		if rx >= 1.5 {
			need = 1.5
		}
		add(1, x >= need, fmt.Sprintf("%.2f×", x), fmt.Sprintf("≥ %.1f×; raw is %.2f×", need, rx), fmt.Sprintf("%.0f %% short", (1-x/need)*100))
	}
	if s.Latency && len(g.Latencies) > 0 && len(r.Latencies) > 0 {
		x := float64(percentile(g.Latencies, 0.99)) / float64(percentile(r.Latencies, 0.99))
		add(2, x <= 1.5, fmt.Sprintf("%.2f × raw", x), "≤ 1.5", fmt.Sprintf("%.0f %% over", (x/1.5-1)*100))
	}
	if t.Broker && haveRaw && r.cpu() > 0 {
		x := g.cpu() / r.cpu()
		got := fmt.Sprintf("%.2f × raw", x)
		if s.ServerCPU == nil { // a broker row without a server process: embedded
			got += ", server included"
		}
		add(3, x <= 1.5, got, "≤ 1.5", fmt.Sprintf("%.0f %% over", (x/1.5-1)*100))
	}
	if t.Broker && haveRaw {
		d := g.allocs() - r.allocs()
		add(4, d <= 15, fmt.Sprintf("raw + %.1f", d), "≤ raw + 15", fmt.Sprintf("%.1f over", d-15))
	}
	return
}

// three is "raw / gossip / Watermill" of f over the outcomes, "n/a" where
// one did not run.
func three(s *Scenario, out [nImpl]*Outcome, f func(*Outcome) string) string {
	var parts [nImpl]string
	for i, o := range out {
		if len(o.Runs) == 0 {
			parts[i] = missing(s, o, i)
		} else {
			parts[i] = f(o)
		}
	}
	return strings.Join(parts[:], " / ")
}

func (rep *report) tables() string {
	var b strings.Builder
	mode := fmt.Sprintf("full run: %d repetitions", rep.cfg.reps)
	if rep.cfg.quick {
		mode = "quick run: 1 repetition, a fifth of the events"
	}
	fmt.Fprintf(&b, "Throughput: events handled per second, end to end (publish → handled), 1 publisher and 1 subscriber unless the row says otherwise; median of the runs (min–max); %s, each run capped at %s; fan-out rows count every group's deliveries. "+
		"**typed** rows: gossip publishes a Payload struct (≈ %d bytes of JSON) with `gossip.NewEvent` and handles it with `gossip.Typed[Payload]`, publisher and subscriber on separate buses; Watermill marshals and unmarshals the same struct with encoding/json; the raw client moves pre-encoded %d-byte payloads. "+
		"**raw bytes** rows: all three move the pre-encoded %d-byte payload (gossip as `json.RawMessage`).\n\n",
		mode, rep.cfg.cap, PayloadSize, PayloadSize, PayloadSize)
	b.WriteString("| row | raw client (ceiling) | gossip | Watermill | gossip / raw | gossip / Watermill |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	var notes, capped []string
	for k, s := range rep.scenarios {
		out := rep.outcomes[k]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Name,
			rep.cell(s, out[Raw], Raw), rep.cell(s, out[Gossip], Gossip), rep.cell(s, out[Watermill], Watermill),
			ratio(out[Gossip], out[Raw]), ratio(out[Gossip], out[Watermill]))
		for i, o := range out {
			label := s.Impls[i].Label
			if l, pub := o.lost(); l > 0 {
				notes = append(notes, fmt.Sprintf("%s, %s (%s): lost %d of %d deliveries (%.2f %%).", s.Name, implNames[i], label, l, pub, float64(l)/float64(max(pub, 1))*100))
			}
			if n := o.capped(); n > 0 {
				capped = append(capped, fmt.Sprintf("%s / %s %d of %d", s.Name, implNames[i], n, len(o.Runs)))
			}
			if o.Err != "" && o.Err != errNotApplicable.Error() && o.Err != errPending.Error() {
				notes = append(notes, fmt.Sprintf("%s, %s (%s): error: %s", s.Name, implNames[i], label, o.Err))
			}
			if len(o.Runs) == 0 && s.Impls[i].Note != "" && i != Gossip {
				notes = append(notes, fmt.Sprintf("%s, %s: n/a — %s.", s.Name, implNames[i], s.Impls[i].Note))
			}
		}
	}
	b.WriteString("\nImplementations: ")
	seen := map[string]bool{}
	var impls []string
	for _, s := range rep.scenarios {
		for i := range nImpl {
			if l := s.Impls[i].Label; l != "—" && !seen[l] {
				seen[l] = true
				impls = append(impls, l)
			}
		}
	}
	b.WriteString(strings.Join(impls, ", ") + ".\n")
	if len(capped) > 0 {
		notes = append(notes, fmt.Sprintf("Runs that hit the %s cap (their rate is what was handled by then): %s.", rep.cfg.cap, strings.Join(capped, "; ")))
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}

	server := "nats-server and redis-server run in processes of their own, so the client columns hold the clients alone"
	if rep.nats.Embedded() {
		server = "redis-server runs in a process of its own; **nats-server is embedded in the bench process this time, so on the NATS rows the client columns include the server's CPU and allocations** and the server column is empty"
	}
	fmt.Fprintf(&b, "\nCost per event handled, medians of the runs. Client CPU: the bench process's user + system CPU (getrusage) over the measured window, publisher and subscriber ends together; allocations: its heap allocations (runtime/metrics, as `MemStats.Mallocs` counts them) over the same window; server CPU: the server process's (from `/proc`, 10 ms ticks). %s. The harness's own share (counting deliveries) is in every column alike.\n\n", server)
	b.WriteString("| row | client CPU µs/event: raw / gossip / Watermill | gossip / raw | allocs/event: raw / gossip / Watermill | gossip − raw | server CPU µs/event: raw / gossip / Watermill |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for k, s := range rep.scenarios {
		out := rep.outcomes[k]
		cpuRatio, allocDiff := "—", "—"
		if len(out[Gossip].Runs) > 0 && len(out[Raw].Runs) > 0 {
			if out[Raw].cpu() > 0 {
				cpuRatio = fmt.Sprintf("%.2f", out[Gossip].cpu()/out[Raw].cpu())
			}
			allocDiff = fmt.Sprintf("%+.1f", out[Gossip].allocs()-out[Raw].allocs())
		}
		srv := "—"
		if s.ServerCPU != nil {
			srv = three(s, out, func(o *Outcome) string { return fmt.Sprintf("%.2f", o.serverCPU()) })
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Name,
			three(s, out, func(o *Outcome) string { return fmt.Sprintf("%.2f", o.cpu()) }), cpuRatio,
			three(s, out, func(o *Outcome) string { return fmt.Sprintf("%.1f", o.allocs()) }), allocDiff, srv)
	}

	fmt.Fprintf(&b, "\nLatency, publish → handled, at a paced %d events/s, one event per Publish (%d events per run, all runs pooled), in µs:\n\n", rep.cfg.latRate, rep.cfg.latEvents)
	b.WriteString("| row | raw p50 / p99 | gossip p50 / p99 | Watermill p50 / p99 | gossip p99 / raw p99 |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for k, s := range rep.scenarios {
		if !s.Latency {
			continue
		}
		out := rep.outcomes[k]
		cell := func(i int) string {
			o := out[i]
			if len(o.Latencies) == 0 {
				return missing(s, o, i)
			}
			return fmtMicros(percentile(o.Latencies, 0.5)) + " / " + fmtMicros(percentile(o.Latencies, 0.99))
		}
		rr := "—"
		if len(out[Gossip].Latencies) > 0 && len(out[Raw].Latencies) > 0 {
			rr = fmt.Sprintf("%.2f", float64(percentile(out[Gossip].Latencies, 0.99))/float64(percentile(out[Raw].Latencies, 0.99)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Name, cell(Raw), cell(Gossip), cell(Watermill), rr)
	}

	var tb strings.Builder
	met, total := 0, 0
	for k, s := range rep.scenarios {
		if s.NoTargets || s.Target == (Target{}) && !s.Latency {
			continue
		}
		c, m, t := rep.targetCells(s, rep.outcomes[k])
		met, total = met+m, total+t
		fmt.Fprintf(&tb, "| %s | %s |\n", s.Name, strings.Join(c[:], " | "))
	}
	fmt.Fprintf(&b, "\nTargets of issue 11 on the typed rows, from the medians above: **%d of %d met**. Rate: ≥ 0.9 × raw for one event per Publish, ≥ 0.8 × raw batched, concurrent and on NATS core, ≥ 1.5 M events/s in process; Watermill: never behind it, and ≥ 1.5× it where the raw client is ≥ 1.5× it; p99 at %d events/s ≤ 1.5 × raw; on the broker rows, client CPU per event ≤ 1.5 × raw and allocations per event ≤ raw + 15.\n\n", met, total, rep.cfg.latRate)
	b.WriteString("| row | rate | against Watermill | p99 | client CPU / event | allocs / event |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	b.WriteString(tb.String())
	return b.String()
}

func (rep *report) machine() string {
	var b strings.Builder
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					cpu = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %d CPUs (nproc), %s, %s/%s; loopback only; shared with other work, so compare the ratios within one run rather than absolute numbers across runs\n", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- Go: %s\n", runtime.Version())
	where := "in a child process (the bench binary run with `-serve-nats`)"
	if rep.nats.Embedded() {
		where = "embedded in the bench process"
	}
	fmt.Fprintf(&b, "- Servers: nats-server %s %s (JetStream, file storage in a temporary directory); %s (`--save \"\" --appendonly no`), both on free loopback ports\n", natsserver.VERSION, where, rep.redisVersion)
	var deps []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/nats-io/nats.go", "github.com/redis/go-redis/v9", "github.com/ThreeDotsLabs/watermill",
				"github.com/ThreeDotsLabs/watermill-nats/v2", "github.com/ThreeDotsLabs/watermill-redisstream":
				deps = append(deps, shortName(d.Path)+" "+d.Version)
			}
		}
	}
	if len(deps) > 0 {
		fmt.Fprintf(&b, "- Clients: %s\n", strings.Join(deps, ", "))
	}
	fmt.Fprintf(&b, "- The whole run took %s\n", rep.took.Round(time.Second))
	return b.String()
}

const (
	beginMarker = "<!-- bench:begin — generated by `make bench` (bench/); edits between the markers are overwritten -->"
	endMarker   = "<!-- bench:end -->"
)

// writeDoc replaces the generated part of the doc, keeping what is written
// around it.
func (rep *report) writeDoc(path, tables string) error {
	gen := beginMarker + "\n\n" + tables + "\n![Throughput of the typed rows: raw client, gossip, Watermill](performance.png)\n\nMeasured on:\n\n" + rep.machine() + "\n" + endMarker
	old, err := os.ReadFile(path)
	if err != nil {
		old = []byte("# Performance\n\n" + beginMarker + "\n" + endMarker + "\n")
	}
	i := bytes.Index(old, []byte("<!-- bench:begin"))
	j := bytes.Index(old, []byte(endMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no generated section between %q and %q", path, "<!-- bench:begin", endMarker)
	}
	var out bytes.Buffer
	out.Write(old[:i])
	out.WriteString(gen)
	out.Write(old[j+len(endMarker):])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

func redisVersion() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-server", "--version").Output()
	if err != nil {
		return "redis-server"
	}
	f := strings.Fields(string(out))
	for _, x := range f {
		if strings.HasPrefix(x, "v=") {
			return "redis-server " + strings.TrimPrefix(x, "v=")
		}
	}
	return "redis-server"
}

// shortName is a module's last path element, skipping a major version
// suffix: "github.com/redis/go-redis/v9" → "go-redis".
func shortName(p string) string {
	parts := strings.Split(p, "/")
	n := parts[len(parts)-1]
	if len(parts) > 1 && len(n) > 1 && n[0] == 'v' && strings.Trim(n[1:], "0123456789") == "" {
		n = parts[len(parts)-2]
	}
	return n
}
