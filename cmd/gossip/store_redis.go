package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisdriver "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// redisConn is what the Redis driver's connection offers tools.
type redisConn interface {
	Redis() goredis.UniversalClient
	Mode() redisdriver.Mode
	StreamKey(eventType string) string
	TypesKey() string
	Decode(eventType string, values map[string]any) (*driver.Message, error)
}

// redisStore reads the streams under the connection's prefix.
type redisStore struct {
	c      redisConn
	client goredis.UniversalClient
}

func redisStoreOf(conn driver.Conn) (store, bool) {
	c, ok := conn.(redisConn)
	if !ok || c.Mode() != redisdriver.Streams {
		return nil, false
	}
	return &redisStore{c: c, client: c.Redis()}, true
}

// redisEntry locates a stream entry.
type redisEntry struct{ key, id string }

// types returns the registered event types, sorted, that keep matches.
func (s *redisStore) types(ctx context.Context, keep func(string) bool) ([]string, error) {
	all, err := s.client.SMembers(ctx, s.c.TypesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("read the type registry %s: %w", s.c.TypesKey(), err)
	}
	all = slices.DeleteFunc(all, func(t string) bool { return !keep(t) })
	slices.Sort(all)
	return all, nil
}

// entryTime is when Redis stored the entry with ID id.
func entryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// pageSize is how many entries one XRANGE reads.
const pageSize = 500

func (s *redisStore) deadLetters(ctx context.Context, fn func(stored) bool) error {
	types, err := s.types(ctx, func(t string) bool { return strings.HasPrefix(t, gossip.DeadLetterPrefix+".") })
	if err != nil {
		return err
	}
	for _, t := range types {
		key := s.c.StreamKey(t)
		for start := "-"; ; {
			entries, err := s.client.XRangeN(ctx, key, start, "+", pageSize).Result()
			if err != nil {
				if strings.HasPrefix(err.Error(), "WRONGTYPE") {
					break // not gossip's key
				}
				return fmt.Errorf("XRANGE %s: %w", key, err)
			}
			for _, e := range entries {
				m, derr := s.c.Decode(t, e.Values)
				if !fn(stored{Msg: m, Err: derr, Stored: entryTime(e.ID), ref: redisEntry{key, e.ID}}) {
					return nil
				}
			}
			if len(entries) < pageSize {
				break
			}
			start = "(" + entries[len(entries)-1].ID
		}
	}
	return nil
}

func (s *redisStore) remove(ctx context.Context, m stored) error {
	e := m.ref.(redisEntry)
	if err := s.client.XDel(ctx, e.key, e.id).Err(); err != nil {
		return fmt.Errorf("XDEL %s %s: %w", e.key, e.id, err)
	}
	return nil
}

func (s *redisStore) groups(ctx context.Context) ([]groupState, error) {
	types, err := s.types(ctx, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	var out []groupState
	for _, t := range types {
		key := s.c.StreamKey(t)
		infos, err := s.client.XInfoGroups(ctx, key).Result()
		if err != nil {
			if strings.HasPrefix(err.Error(), "ERR no such key") || strings.HasPrefix(err.Error(), "WRONGTYPE") {
				continue
			}
			return nil, fmt.Errorf("XINFO GROUPS %s: %w", key, err)
		}
		for _, gi := range infos {
			g := groupState{Group: gi.Name, Pattern: t, Pending: gi.Lag, Unacked: gi.Pending, Consumers: int(gi.Consumers)}
			switch {
			case gi.Pending > 0:
				p, err := s.client.XPending(ctx, key, gi.Name).Result()
				if err != nil {
					return nil, fmt.Errorf("XPENDING %s %s: %w", key, gi.Name, err)
				}
				g.Oldest = entryTime(p.Lower)
			case gi.Lag > 0:
				next, err := s.client.XRangeN(ctx, key, "("+gi.LastDeliveredID, "+", 1).Result()
				if err != nil {
					return nil, fmt.Errorf("XRANGE %s: %w", key, err)
				}
				if len(next) > 0 {
					g.Oldest = entryTime(next[0].ID)
				}
			}
			out = append(out, g)
		}
	}
	return out, nil
}

func (s *redisStore) forget(ctx context.Context, t string) error {
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.c.StreamKey(t))
		p.SRem(ctx, s.c.TypesKey(), t)
		return nil
	})
	return err
}
