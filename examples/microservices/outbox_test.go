package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// With -outbox the story is the same: UserService's events go through the
// outbox (one transaction with the user row) and every service does its
// work once. On SQLite (a file of the test's own) and on PostgreSQL.
func TestDemoWithOutboxTellsTheSameStory(t *testing.T) {
	pg := os.Getenv("GOSSIP_POSTGRES_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	databases := map[string]string{"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "demo.db")}
	if postgresUp(pg) {
		databases["postgres"] = pg
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("no PostgreSQL at %s (CI=true: required)", pg)
	} else {
		t.Log("*** no PostgreSQL on 127.0.0.1:5432 and GOSSIP_POSTGRES_URL unset: the -outbox demo runs on SQLite only")
	}
	want := append([]string{"user_service writes users and their events in one transaction (outbox on "}, storyLines...)
	for name, dsn := range databases {
		t.Run(name, func(t *testing.T) {
			// A run name of its own: rows an earlier, crashed run left in
			// the shared tables are relayed, and handled unseen.
			out := runDemo(t, "-outbox", dsn, "-run", fmt.Sprintf("outbox%d", time.Now().UnixNano()))
			for _, line := range want {
				assert.Equal(t, 1, strings.Count(out, line), "once: %q in\n%s", line, out)
			}
		})
	}
}

func postgresUp(url string) bool {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return false
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}
