package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

const deadLettersAbout = `List, show, replay or purge the dead letters the transport stores
(JetStream: the bus's stream, subjects <prefix>.dead_letter.>; Redis
Streams: the dead_letter.* streams under the prefix).

  list                 one line per dead letter (-o json: one JSON object per line)
  show ID...           everything about the dead letters with these event IDs
  replay [ID...]       publish them again under their original type, then delete
                       them (--keep keeps them); --dry-run says what it would do
  purge [ID...]        delete them

Without IDs, replay and purge act on what the filters select, and need at
least one filter or --all. A replayed event carries gossip-replays (how often
it was replayed) and gossip-replay-of (the first dead letter's event ID); if
it fails again its dead letter carries both, and replay refuses it once
gossip-replays reaches --max-replays. A replay reaches every group
subscribed to the original type, not only the one that gave up.`

// Metadata the CLI sets on a replayed event.
const ()

// filter selects dead letters.
type filter struct {
	group, typ, errText string
	olderThan, newer    time.Duration
	ids                 []string
	limit               int
}

func (f *filter) flags(fs *flag.FlagSet) {
	fs.StringVar(&f.group, "group", "", "only dead letters of this group (\"_\": broadcast subscriptions)")
	fs.StringVar(&f.typ, "type", "", "only events whose original type matches this pattern ('order.>')")
	fs.StringVar(&f.errText, "error", "", "only dead letters whose error contains this text (case-insensitive)")
	fs.DurationVar(&f.olderThan, "older-than", 0, "only dead letters stored longer ago than this")
	fs.DurationVar(&f.newer, "newer-than", 0, "only dead letters stored within this long")
	fs.IntVar(&f.limit, "limit", 0, "act on at most this many (0: all)")
}

func (f *filter) any() bool {
	return f.group != "" || f.typ != "" || f.errText != "" || f.olderThan > 0 || f.newer > 0 || len(f.ids) > 0
}

func (f *filter) match(now time.Time, s stored, r record) bool {
	switch {
	case len(f.ids) > 0 && !slices.Contains(f.ids, r.ID):
	case f.group != "" && r.Group != f.group && !(f.group == "_" && r.Group == ""):
	case f.typ != "" && !gossip.EventType(r.Type).Matches(gossip.EventType(f.typ)):
	case f.errText != "" && !strings.Contains(strings.ToLower(r.Error), strings.ToLower(f.errText)):
	case f.olderThan > 0 && now.Sub(s.Stored) < f.olderThan:
	case f.newer > 0 && now.Sub(s.Stored) > f.newer:
	default:
		return true
	}
	return false
}

// selectFrom returns the dead letters st holds that f selects.
func (f *filter) selectFrom(ctx context.Context, st store, now time.Time) ([]stored, error) {
	var sel []stored
	err := st.deadLetters(ctx, func(s stored) bool {
		if f.match(now, s, recordOf(s, false)) {
			sel = append(sel, s)
		}
		return f.limit == 0 || len(sel) < f.limit
	})
	return sel, err
}

// record is a dead letter as the commands print it.
type record struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"` // the original type
	Group        string            `json:"group"`
	Subscription string            `json:"subscription,omitempty"`
	Deliveries   int               `json:"deliveries"`
	Error        string            `json:"error"`
	Replays      int               `json:"replays"`
	ReplayOf     string            `json:"replay_of,omitempty"`
	Source       string            `json:"source"`
	Time         time.Time         `json:"time"`          // when the event was created
	DeadAt       time.Time         `json:"dead_lettered"` // when the dead letter was stored
	ContentType  string            `json:"content_type,omitempty"`
	Data         json.RawMessage   `json:"data,omitempty"`
	DataText     string            `json:"data_text,omitempty"` // data that is not JSON
	Metadata     map[string]string `json:"metadata,omitempty"`
	Unreadable   string            `json:"unreadable,omitempty"` // why the stored message could not be read
}

func recordOf(s stored, full bool) record {
	m := s.Msg
	r := record{DeadAt: s.Stored}
	if s.Err != nil {
		r.Unreadable = s.Err.Error()
	}
	if m == nil {
		return r
	}
	info, _ := gossip.DeadLetterInfo(&gossip.Event{Type: gossip.EventType(m.Type), Metadata: m.Metadata})
	r.ID, r.Type, r.Group, r.Subscription = m.ID, string(info.OriginalType), info.Group, string(info.Subscription)
	r.Deliveries, r.Error, r.Source, r.Time = info.Deliveries, info.Error, m.Source, m.Time
	r.Replays, _ = strconv.Atoi(m.Metadata[gossip.MetaReplays])
	r.ReplayOf = m.Metadata[gossip.MetaReplayOf]
	if full {
		r.ContentType, r.Metadata = m.ContentType, m.Metadata
		if json.Valid(m.Data) {
			r.Data = m.Data
		} else {
			r.DataText = string(m.Data)
		}
	}
	return r
}

func deadLetters(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		c.flags()
		if _, err := c.parse(args); err != nil {
			return err
		}
		return usagef("want a subcommand: list, show, replay or purge")
	}
	sub, args := args[0], args[1:]
	fs := c.flags()
	var f filter
	f.flags(fs)
	var all, dryRun, keep *bool
	var rate *float64
	var maxReplays *int
	switch sub {
	case "list", "show":
		c.outputFlag()
	case "replay", "purge":
		all = fs.Bool("all", false, "act on every dead letter when no ID or filter is given")
		dryRun = fs.Bool("dry-run", false, "say what would be done, do nothing")
		if sub == "replay" {
			keep = fs.Bool("keep", false, "keep the dead letters after replaying them")
			rate = fs.Float64("rate", 20, "replay at most this many events per second")
			maxReplays = fs.Int("max-replays", 3, "refuse dead letters of events already replayed this often (0: no limit)")
			fs.Lookup("timeout").DefValue = "0s" // a backlog at --rate may take long
			c.timeout = 0
		}
	default:
		return usagef("unknown subcommand %q: want list, show, replay or purge", sub)
	}
	c.name = "deadletters " + sub
	c.synopsis = c.name + " [ID...] [filters]"
	ids, err := c.parse(args)
	if err != nil {
		return err
	}
	f.ids = ids
	switch {
	case sub == "show" && len(ids) == 0:
		return usagef("want the event ID of a dead letter ('gossip deadletters list' shows them)")
	case sub == "list" && len(ids) > 0:
		return usagef("list takes no IDs, only filters")
	case (sub == "replay" || sub == "purge") && !f.any() && !*all:
		return usagef("say which dead letters: IDs, a filter (--group, --type, --error, --older-than, --newer-than) or --all")
	case rate != nil && *rate <= 0:
		return usagef("--rate must be above 0")
	}

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bus, st, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer c.shutdown(bus)
	now := time.Now()
	sel, err := f.selectFrom(ctx, st, now)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return c.list(now, sel)
	case "show":
		return c.show(sel, ids)
	case "purge":
		return c.purge(ctx, st, sel, *dryRun)
	}
	return c.replay(ctx, bus, st, sel, replayOptions{dryRun: *dryRun, keep: *keep, rate: *rate, maxReplays: *maxReplays})
}

func (c *cli) list(now time.Time, sel []stored) error {
	rows := [][]string{{"ID", "GROUP", "TYPE", "DELIVERIES", "REPLAYS", "AGE", "ERROR"}}
	for _, s := range sel {
		r := recordOf(s, false)
		if c.output == "json" {
			if err := c.printJSON(r); err != nil {
				return err
			}
			continue
		}
		why := r.Error
		if r.Unreadable != "" {
			why = "unreadable: " + r.Unreadable
		}
		if len(why) > 80 {
			why = why[:77] + "..."
		}
		group := r.Group
		if group == "" {
			group = "_"
		}
		rows = append(rows, []string{r.ID, group, r.Type, strconv.Itoa(r.Deliveries), strconv.Itoa(r.Replays), age(now, r.DeadAt), why})
	}
	if c.output != "json" {
		table(c.stdout, rows)
		fmt.Fprintf(c.stdout, "%d dead letters\n", len(sel))
	}
	return nil
}

func (c *cli) show(sel []stored, ids []string) error {
	found := map[string]bool{}
	for _, s := range sel {
		r := recordOf(s, true)
		found[r.ID] = true
		if c.output == "json" {
			if err := c.printJSON(r); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(c.stdout, "id:             %s\ntype:           %s\ngroup:          %s\nsubscription:   %s\n",
			r.ID, r.Type, r.Group, r.Subscription)
		fmt.Fprintf(c.stdout, "deliveries:     %d\nreplays:        %d\n", r.Deliveries, r.Replays)
		if r.ReplayOf != "" {
			fmt.Fprintf(c.stdout, "replay of:      %s\n", r.ReplayOf)
		}
		fmt.Fprintf(c.stdout, "error:          %s\nsource:         %s\ntime:           %s\ndead-lettered:  %s\ncontent type:   %s\n",
			r.Error, r.Source, r.Time.UTC().Format(time.RFC3339Nano), r.DeadAt.UTC().Format(time.RFC3339Nano), r.ContentType)
		if r.Unreadable != "" {
			fmt.Fprintf(c.stdout, "unreadable:     %s\n", r.Unreadable)
		}
		fmt.Fprintln(c.stdout, "metadata:")
		for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
			fmt.Fprintf(c.stdout, "  %s: %q\n", k, r.Metadata[k])
		}
		if r.Data != nil {
			fmt.Fprintf(c.stdout, "data:           %s\n\n", r.Data)
		} else {
			fmt.Fprintf(c.stdout, "data:           %q\n\n", r.DataText)
		}
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no stored dead letter with ID %s", strings.Join(missing, ", "))
	}
	return nil
}

func (c *cli) purge(ctx context.Context, st store, sel []stored, dryRun bool) error {
	for _, s := range sel {
		r := recordOf(s, false)
		if dryRun {
			fmt.Fprintf(c.stdout, "would purge %s (%s, group %q)\n", r.ID, r.Type, r.Group)
			continue
		}
		if err := st.remove(ctx, s); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "purged %s (%s, group %q)\n", r.ID, r.Type, r.Group)
	}
	verb := "purged"
	if dryRun {
		verb = "would purge"
	}
	fmt.Fprintf(c.stderr, "%s %d dead letters\n", verb, len(sel))
	return nil
}

type replayOptions struct {
	dryRun, keep bool
	rate         float64
	maxReplays   int
}

// errSkipped says some selected dead letters were not replayed.
var errSkipped = errors.New("some dead letters were not replayed (see above)")

func (c *cli) replay(ctx context.Context, bus *gossip.EventBus, st store, sel []stored, o replayOptions) error {
	interval := time.Duration(float64(time.Second) / o.rate)
	var last time.Time
	done := map[string]bool{} // event IDs replayed: one event dead-lettered by two groups is replayed once
	replayed, skipped := 0, 0
	for _, s := range sel {
		r := recordOf(s, false)
		e, err := replayEvent(s, r, o.maxReplays)
		if err != nil {
			fmt.Fprintf(c.stderr, "skip %s: %v\n", r.ID, err)
			skipped++
			continue
		}
		if o.dryRun {
			if !done[r.ID] {
				fmt.Fprintf(c.stdout, "would replay %s as %s (replay %d)\n", r.ID, r.Type, r.Replays+1)
				replayed++
			}
			done[r.ID] = true
			continue
		}
		if !done[r.ID] {
			if wait := interval - time.Since(last); !last.IsZero() && wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
			last = time.Now()
			if err := bus.Publish(ctx, e); err != nil {
				return fmt.Errorf("replay %s: %w", r.ID, err)
			}
			fmt.Fprintf(c.stdout, "replayed %s as %s (%s, replay %d)\n", r.ID, e.ID, r.Type, r.Replays+1)
			replayed++
			done[r.ID] = true
		}
		if !o.keep {
			if err := st.remove(ctx, s); err != nil {
				return fmt.Errorf("replayed %s, but: %w", r.ID, err)
			}
		}
	}
	verb := "replayed"
	if o.dryRun {
		verb = "would replay"
	}
	fmt.Fprintf(c.stderr, "%s %d, skipped %d\n", verb, replayed, skipped)
	if skipped > 0 {
		return errSkipped
	}
	return nil
}

// replayEvent is the event to publish for dead letter s: gossip.Replay's,
// with the replay count and the first dead letter's ID.
func replayEvent(s stored, r record, maxReplays int) (*gossip.Event, error) {
	m := s.Msg
	switch {
	case s.Err != nil || m == nil:
		return nil, fmt.Errorf("unreadable: %v", s.Err)
	case r.Type == "":
		return nil, errors.New("it names no original type")
	case maxReplays > 0 && r.Replays >= maxReplays:
		return nil, fmt.Errorf("already replayed %d times (--max-replays %d); fix the handler, then purge it or raise --max-replays", r.Replays, maxReplays)
	case m.Metadata[gossip.MetaDeadLetterDataBytes] != "":
		return nil, fmt.Errorf("its data (%s bytes) was too large to keep in the dead letter", m.Metadata[gossip.MetaDeadLetterDataBytes])
	}
	if ct := driver.MediaType(m.ContentType); ct != "" && ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		return nil, fmt.Errorf("its data is %s; the CLI replays JSON data only (use gossip.Replay in Go)", m.ContentType)
	}
	var data any
	if len(m.Data) > 0 {
		data = json.RawMessage(m.Data)
	}
	return gossip.Replay(&gossip.Event{ID: m.ID, Type: gossip.EventType(m.Type), Source: m.Source,
		Timestamp: m.Time, Data: data, Metadata: m.Metadata}), nil
}
