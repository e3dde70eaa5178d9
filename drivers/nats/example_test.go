package nats_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	natsgo "github.com/nats-io/nats.go"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
)

type UserCreated struct {
	Email string `json:"email"`
}

// A bus on NATS JetStream, here an embedded server: a group subscribes,
// an event is published, the group's handler gets it typed.
func Example() {
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()

	bus, err := gossip.NewEventBus(&gossip.Config{
		Driver: srv.URL() + "?prefix=example", // or "nats://user:pass@a:4222,b:4222?replicas=3"
		Source: "user-service",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bus.Shutdown(context.Background())

	done := make(chan struct{})
	_, err = bus.Subscribe("user.created", gossip.Typed(func(ctx context.Context, e *gossip.Event, u UserCreated) error {
		fmt.Printf("welcome mail to %s (from %s)\n", u.Email, e.Source)
		close(done)
		return nil
	}), gossip.Group("email"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := bus.Publish(context.Background(), gossip.NewEvent("user.created", UserCreated{Email: "ada@example.com"})); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	fmt.Println("transport:", bus.Transport())
	// Output:
	// welcome mail to ada@example.com (from user-service)
	// transport: nats
}

// New builds the transport on a connection the application made, with
// typed options instead of URL parameters.
func ExampleNew() {
	srv, err := natsserver.Start(natsserver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()

	nc, err := natsgo.Connect(srv.URL(), natsgo.Name("order-service")) // TLS, NKeys, callbacks: as nats.go does them
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close() // the bus leaves the application's connection open

	conn, err := natsdriver.New(nc, natsdriver.StreamPrefix("orders"), natsdriver.MaxAge(24*time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	bus, err := gossip.NewEventBus(&gossip.Config{Conn: conn})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bus.Shutdown(context.Background())
	fmt.Println(conn.(*natsdriver.Conn).Subject("order.placed"), conn.(*natsdriver.Conn).Stream())
	// Output: orders.order.placed orders
}

// Credentials and TLS come from the URL: no hand-built *nats.Conn is
// needed for a private CA, a client certificate or a credentials file. (Not
// run: it needs such a server.)
func ExampleDriver_Open_security() {
	q := url.Values{
		"creds":    {"/etc/order-service/user.creds"},
		"tls_ca":   {"/etc/order-service/ca.pem"},
		"tls_cert": {"/etc/order-service/client.pem"},
		"tls_key":  {"/etc/order-service/client-key.pem"},
	}
	// A password goes percent-encoded: url.UserPassword does it.
	u := url.URL{Scheme: "nats", User: url.UserPassword("orders", "TOPSECRET/pw#1?%"), Host: "nats.internal:4222", RawQuery: q.Encode()}
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: u.String(), Source: "order-service", DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err) // names the server, never the password
		return
	}
	defer bus.Shutdown(context.Background())
}
