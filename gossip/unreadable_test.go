package gossip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gossipbus/gossip/internal/testdriver"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// The dead letter of another producer's event whose ID breaks the rule
// (a driver reported it unreadable) is publishable: it gets a new ID, with
// the old one quoted in gossip-original-id, and leaves out the metadata the
// rule refuses.
func TestUnreadableEventsDeadLetterIsRepaired(t *testing.T) {
	conn := &testdriver.Conn{Deliveries: make(chan driver.Delivery, 1), Published: make(chan *driver.Message, 1)}
	b, err := gossip.NewEventBus(&gossip.Config{Conn: conn})
	require.NoError(t, err)
	defer b.Shutdown(context.Background())
	handled := make(chan struct{}, 1)
	_, err = b.Subscribe("orders.created", func(context.Context, *gossip.Event) error { handled <- struct{}{}; return nil })
	require.NoError(t, err)

	bad := &driver.Message{ID: "a\r\nb", Type: "orders.created", Source: "s", Data: []byte("x"),
		Metadata: map[string]string{"ok": "kept", "caf\xe9": "dropped"}}
	reason := fmt.Errorf("%w: %v", driver.ErrUnreadable, driver.CheckMessage(bad))
	conn.Deliveries <- driver.Delivery{Message: bad, Attempt: 1, Err: reason}

	select {
	case dl := <-conn.Published:
		assert.Equal(t, string(gossip.DeadLetterType("", "orders.created")), dl.Type)
		assert.NoError(t, driver.CheckMessage(dl), "the dead letter keeps the rule")
		assert.NotEqual(t, bad.ID, dl.ID)
		assert.Equal(t, `"a\r\nb"`, dl.Metadata[gossip.MetaDeadLetterOriginalID])
		assert.Equal(t, "kept", dl.Metadata["ok"])
		assert.Contains(t, dl.Metadata[gossip.MetaDeadLetterDropped], `"caf\xe9"`)
		assert.Contains(t, dl.Metadata[gossip.MetaDeadLetterError], "control character U+000D")
	case <-time.After(5 * time.Second):
		t.Fatal("no dead letter")
	}
	select {
	case <-handled:
		t.Fatal("the handler ran for an unreadable event")
	default:
	}

}
