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
	natsURL      string
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

func (o *Outcome) cpu() float64 {
	var r []float64
	for _, x := range o.Runs {
		r = append(r, x.CPUPerMillion())
	}
	return median(r)
}

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

// met says whether gossip met the scenario's target, and by how much it
// fell short when not.
func met(s *Scenario, out [nImpl]*Outcome) string {
	t := s.Target
	g, r := out[Gossip], out[Raw]
	if t == (Target{}) {
		return "—"
	}
	if len(g.Runs) == 0 {
		return "pending"
	}
	var short []string
	if t.MinRate > 0 && g.Median() < t.MinRate {
		short = append(short, fmt.Sprintf("%.0f %% short", (1-g.Median()/t.MinRate)*100))
	}
	if t.MinRatio > 0 && len(r.Runs) > 0 {
		if x := g.Median() / r.Median(); x < t.MinRatio {
			short = append(short, fmt.Sprintf("at %.0f %% of raw", x*100))
		}
	}
	if t.NoLoss {
		if l, _ := g.lost(); l > 0 {
			short = append(short, fmt.Sprintf("lost %d", l))
		}
	}
	if len(short) == 0 {
		return "yes"
	}
	return "**no**: " + strings.Join(short, ", ")
}

func (rep *report) tables() string {
	var b strings.Builder
	mode := fmt.Sprintf("full run: %d repetitions", rep.cfg.reps)
	if rep.cfg.quick {
		mode = "quick run: 1 repetition, a fifth of the events"
	}
	fmt.Fprintf(&b, "Throughput: events handled per second, end to end (publish → handled), %d-byte payloads, 1 publisher and 1 subscriber unless the row says otherwise; median of the runs (min–max); %s, each run capped at %s; fan-out rows count every group's deliveries.\n\n",
		PayloadSize, mode, rep.cfg.cap)
	b.WriteString("| scenario | raw client (ceiling) | gossip | Watermill | gossip / raw | gossip / Watermill | gossip target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	var notes, capped []string
	for k, s := range rep.scenarios {
		out := rep.outcomes[k]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Name,
			rep.cell(s, out[Raw], Raw), rep.cell(s, out[Gossip], Gossip), rep.cell(s, out[Watermill], Watermill),
			ratio(out[Gossip], out[Raw]), ratio(out[Gossip], out[Watermill]), s.Target, met(s, out))
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

	fmt.Fprintf(&b, "\nLatency, publish → handled, at a paced %d events/s (%d events per run, all runs pooled), in µs:\n\n", rep.cfg.latRate, rep.cfg.latEvents)
	b.WriteString("| scenario | raw p50 / p99 | gossip p50 / p99 | Watermill p50 / p99 | gossip p99 / raw p99 | met (≤ 1.5×) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
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
		rr, mt := "—", "—"
		if len(out[Gossip].Latencies) > 0 && len(out[Raw].Latencies) > 0 {
			x := float64(percentile(out[Gossip].Latencies, 0.99)) / float64(percentile(out[Raw].Latencies, 0.99))
			rr = fmt.Sprintf("%.2f", x)
			mt = "yes"
			if x > 1.5 {
				mt = "**no**"
			}
		} else if len(out[Gossip].Latencies) == 0 {
			mt = "pending"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Name, cell(Raw), cell(Gossip), cell(Watermill), rr, mt)
	}

	b.WriteString("\nCPU seconds per million events handled (process CPU from getrusage, which includes the embedded nats-server; plus redis-server's CPU from /proc on Redis rows), medians:\n\n")
	b.WriteString("| scenario | raw | gossip | Watermill | gossip / raw |\n|---|---|---|---|---|\n")
	for k, s := range rep.scenarios {
		out := rep.outcomes[k]
		cell := func(i int) string {
			if len(out[i].Runs) == 0 {
				return missing(s, out[i], i)
			}
			return fmt.Sprintf("%.2f", out[i].cpu())
		}
		rr := "—"
		if len(out[Gossip].Runs) > 0 && len(out[Raw].Runs) > 0 && out[Raw].cpu() > 0 {
			rr = fmt.Sprintf("%.1f", out[Gossip].cpu()/out[Raw].cpu())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Name, cell(Raw), cell(Gossip), cell(Watermill), rr)
	}
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
	fmt.Fprintf(&b, "- Servers: nats-server %s embedded in the bench process (JetStream, file storage in a temporary directory); %s (`--save \"\" --appendonly no`), both on free loopback ports\n", natsserver.VERSION, rep.redisVersion)
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
	gen := beginMarker + "\n\n" + tables + "\n![Throughput per transport: raw client, gossip, Watermill](performance.png)\n\nMeasured on:\n\n" + rep.machine() + "\n" + endMarker
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
