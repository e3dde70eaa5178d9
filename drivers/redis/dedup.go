package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// DedupWindow makes Publish drop an event whose ID was already added to its
// type's stream within d (URL: dedup_window=2m; default 0, off; 1ms to 7
// days; Streams mode only). Publish then returns nil for the dropped copy,
// as JetStream does within its duplicate window: the transport holds the
// event once. Each ID is remembered in a key "<prefix>:{<type>}:dedup:<id>"
// expiring after d, set in the same script as the XADD, so a retried
// Publish (after a timeout, a lost reply) stores the event at most once.
func DedupWindow(d time.Duration) Option { return func(o *options) { o.dedupWindow = d } }

// Range of DedupWindow.
const (
	minDedupWindow = time.Millisecond
	maxDedupWindow = 7 * 24 * time.Hour
)

func (c *conn) dedupKey(typ, id string) string {
	return c.opts.prefix + ":{" + typ + "}:dedup:" + id
}

// dedupScript adds an entry to stream KEYS[1] unless KEYS[2] (the ID's
// key) exists, which it then sets for ARGV[1] ms. ARGV[2] is the stream's
// MAXLEN (0: none), the rest the entry's fields and values. It returns the
// entry's ID, or nil for a duplicate. A failed XADD removes the ID's key
// again, so that a retry is not taken for a duplicate.
const dedupScript = `
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return false end
local args = {'XADD', KEYS[1]}
if ARGV[2] ~= '0' then
  args[#args + 1] = 'MAXLEN'
  args[#args + 1] = '~'
  args[#args + 1] = ARGV[2]
end
args[#args + 1] = '*'
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
local r = redis.pcall(unpack(args))
if type(r) == 'table' and r.err then
  redis.call('DEL', KEYS[2])
end
return r`

// xaddOnce is the command adding m to stream key unless its ID was added
// within the window (an EVAL of dedupScript; the script is sent with each
// command, which needs no SCRIPT LOAD on any node).
func (c *conn) xaddOnce(ctx context.Context, key string, m *driver.Message) *goredis.Cmd {
	fields := make([]string, 0, 2*(6+len(m.Metadata)))
	binding.Encode(m, func(name, value string) { fields = append(fields, name, value) })
	maxLen := max(c.opts.maxLen, 0)
	args := make([]any, 0, 8+len(fields))
	args = append(args, "eval", dedupScript, 2, key, c.dedupKey(m.Type, m.ID), ms(c.opts.dedupWindow), maxLen)
	return goredis.NewCmd(ctx, appendFields(args, fields, m.Data)...)
}
