package dburl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gossipbus/gossip/outbox/dburl"
)

// Open takes the string a -db flag or an environment variable holds.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "dburl-example")
	defer func() { _ = os.RemoveAll(dir) }()
	db, dialect, err := dburl.Open(context.Background(), "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = db.Close() }()
	fmt.Println(dialect)

	_, _, err = dburl.Open(context.Background(), "mysql://app:secret@db/app")
	fmt.Println(err)
	// Output:
	// sqlite
	// gossip: outbox: unknown database (scheme "mysql"): want "sqlite", "sqlite:///path" or "postgres://..."
}
