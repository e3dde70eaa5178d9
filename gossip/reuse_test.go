package gossip_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// keepingConn is a wire transport that keeps every message's Data slice as
// Publish got it, with a copy made at that moment: a later difference
// between the two means gossip wrote over data the transport still held.
// As a DataCopier it promises to hold nothing after a nil return (the
// kept slices are then only looked at, as a transport's own copy would
// be); failNext makes Publish fail, and a failed Publish may hold its data.
type keepingConn struct {
	copies   bool
	mu       sync.Mutex
	held     [][]byte // the slices as Publish got them
	copied   [][]byte // their bytes at that moment
	msgs     []*driver.Message
	failNext bool
}

func (c *keepingConn) Publish(_ context.Context, msgs []*driver.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.held = append(c.held, m.Data)
		c.copied = append(c.copied, bytes.Clone(m.Data))
		c.msgs = append(c.msgs, m)
	}
	if c.failNext {
		c.failNext = false
		return errors.New("keeping: publish failed")
	}
	return nil
}

func (c *keepingConn) CopiesData() bool { return c.copies }
func (c *keepingConn) Subscribe(context.Context, driver.SubscribeSpec) (driver.Subscription, error) {
	return nil, errors.New("keeping: no subscriptions")
}
func (c *keepingConn) Close(context.Context) error { return nil }

type htmlish struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

// spaced has a MarshalJSON with whitespace, which encoding/json compacts.
type spaced struct{ n int }

func (s spaced) MarshalJSON() ([]byte, error) { return fmt.Appendf(nil, "{ \"n\" :  %d }", s.n), nil }

// Encoding into reused buffers writes the bytes json.Marshal writes (HTML
// escaped, compacted, no newline) and never changes data a transport may
// still hold: what a transport that copies no data keeps, and what any
// transport keeps from a Publish that failed.
func TestEncodedDataIsMarshalsAndNeverReusedWhileHeld(t *testing.T) {
	ctx := context.Background()
	values := func(i int) []any {
		return []any{
			htmlish{N: i, Text: fmt.Sprintf("<b>%d</b> & more", i)},
			spaced{n: i},
			map[string]any{"k": i, "list": []int{i, i + 1}},
			fmt.Sprintf("string %d", i),
		}
	}
	for _, copies := range []bool{false, true} {
		t.Run(fmt.Sprintf("CopiesData=%v", copies), func(t *testing.T) {
			conn := &keepingConn{copies: copies}
			bus := newBus(t, &gossip.Config{Conn: conn})
			var want [][]byte
			failed := map[int]bool{} // indexes into conn.held of a failed Publish's data
			for i := range 50 {
				var batch []*gossip.Event
				for _, v := range values(i) {
					b, err := json.Marshal(v)
					require.NoError(t, err)
					want = append(want, b)
					batch = append(batch, gossip.NewEvent("reuse.checked", v))
				}
				fail := i%7 == 3
				if fail {
					for j := range batch {
						failed[len(conn.held)+j] = true
					}
				}
				conn.failNext = fail
				err := bus.Publish(ctx, batch...)
				if fail {
					require.Error(t, err)
				} else {
					require.NoError(t, err)
				}
			}
			require.Len(t, conn.copied, len(want))
			for i := range want {
				assert.Equal(t, string(want[i]), string(conn.copied[i]), "message %d as Publish got it", i)
				if !copies || failed[i] {
					assert.Equal(t, string(want[i]), string(conn.held[i]), "message %d's data, still held, was written over", i)
				}
			}
			for i, m := range conn.msgs {
				if copies && !failed[i] {
					assert.Nil(t, m.Data, "message %d: a DataCopier's published message lets go of the reused data", i)
				} else {
					assert.NotNil(t, m.Data, "message %d keeps its data", i)
				}
			}
		})
	}
}
