package cloudevents_test

import (
	"fmt"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

// A driver writes an event as its transport's headers or fields with
// Encode, and reads them back one by one with a Decoder.
func Example() {
	b := cloudevents.Binding{MetaPrefix: "x-meta-", Extensions: true, Escape: true}
	m := &driver.Message{ID: "42", Type: "user.created", Source: "users", Time: time.Unix(0, 0),
		ContentType: "application/json", Data: []byte(`{"id":1}`), Metadata: map[string]string{"Request Id": "a b"}}

	var names, values []string
	b.Encode(m, func(name, value string) {
		names, values = append(names, name), append(values, value)
		fmt.Printf("%s: %s\n", name, value)
	})

	d := b.NewDecoder("user.created", m.Data)
	for i := range names {
		d.Add(names[i], values[i])
	}
	got, err := d.Message()
	fmt.Println(got.ID, got.Source, got.Metadata["Request Id"], err)
	// Output:
	// ce-specversion: 1.0
	// ce-id: 42
	// ce-type: user.created
	// ce-source: users
	// ce-time: 1970-01-01T00:00:00Z
	// content-type: application/json
	// x-meta-Request%20Id: a%20b
	// 42 users a b <nil>
}
