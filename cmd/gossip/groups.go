package main

import (
	"context"
	"strconv"
	"time"
)

const groupsAbout = `Per consumer group and pattern: PENDING (stored, not yet delivered to the
group), UNACKED (delivered, not acknowledged: being handled or retried),
OLDEST (the age of the oldest of those) and CONSUMERS (members connected).
JetStream: one row per durable consumer (a group's subscription on one
pattern), from consumer info; CONSUMERS counts its waiting pull requests.
Redis Streams: one row per group and event type stream (a wildcard group
shows a row per type), from XINFO GROUPS and XPENDING.`

func groups(ctx context.Context, c *cli, args []string) error {
	c.flags()
	c.outputFlag()
	group := c.fs.String("group", "", "only this group")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bus, st, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer c.shutdown(bus)
	gs, err := st.groups(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := [][]string{{"GROUP", "PATTERN", "PENDING", "UNACKED", "OLDEST", "CONSUMERS"}}
	for _, g := range gs {
		if *group != "" && g.Group != *group {
			continue
		}
		if c.output == "json" {
			if err := c.printJSON(g); err != nil {
				return err
			}
			continue
		}
		pending := strconv.FormatInt(g.Pending, 10)
		if g.Pending < 0 {
			pending = "?"
		}
		rows = append(rows, []string{g.Group, g.Pattern, pending, strconv.FormatInt(g.Unacked, 10), age(now, g.Oldest), strconv.Itoa(g.Consumers)})
	}
	if c.output != "json" {
		table(c.stdout, rows)
	}
	return nil
}
