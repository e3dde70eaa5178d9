package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	_ "github.com/gossipbus/gossip/drivers/nats"
	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `usage: gossip <command> [flags] [arguments]

commands:
  publish      publish one event
  tail         print events matching a pattern as they arrive
  deadletters  list, show, replay or purge the dead letters the transport stores
  groups       per consumer group and pattern: pending, unacknowledged, oldest age, consumers
  lag          the same as groups
  bench        publish and handle N events, print the throughput, remove what it stored
  completion   print a bash completion script: source <(gossip completion bash)

Flags may come before or after arguments. Run 'gossip <command> --help' for
a command's flags. Exit status: 0 success, 1 error, 2 usage error.`

// command is one subcommand: its synopsis and its body.
type command struct {
	synopsis string // "tail <pattern>"
	about    string
	run      func(ctx context.Context, c *cli, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"publish":     {"publish --type <type> [--data JSON|@file|-] [--meta k=v]...", "Publish one event and print its ID.", publish},
		"tail":        {"tail <pattern> [--group name] [-n count]", "Print events matching pattern as they arrive (a broadcast listener, or a member of --group).", tail},
		"deadletters": {"deadletters list|show|replay|purge [ID...] [filters]", deadLettersAbout, deadLetters},
		"groups":      {"groups [--group name]", groupsAbout, groups},
		"lag":         {"lag [--group name]", groupsAbout, groups},
		"completion":  {"completion bash", "Print a bash completion script: source <(gossip completion bash). In zsh, run autoload -U bashcompinit && bashcompinit first.", completion},
		"bench":       {"bench [-n count] [--batch n] [--size bytes]", "Publish and handle N events, print the throughput; the events are removed from the transport afterwards.", bench},
	}
}

// usageError is an error in how the command was called: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// cli is one run of the command: where it writes and the common flags.
type cli struct {
	stdout, stderr io.Writer
	name           string // the subcommand
	synopsis       string // for --help
	about          string
	fs             *flag.FlagSet
	driver         string
	source         string
	output         string
	timeout        time.Duration
}

// run runs the command line args (without the program name) and returns
// the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "gossip: unknown command %q\n\n%s\n", name, usage)
		return exitUsage
	}
	c := &cli{stdout: stdout, stderr: stderr, name: name, synopsis: cmd.synopsis, about: cmd.about}
	err := cmd.run(ctx, c, args[1:])
	var ue usageError
	msg := "" // the error without the library's own "gossip: ", which the line starts with
	if err != nil {
		msg = strings.TrimPrefix(err.Error(), "gossip: ")
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gossip %s: %s\nrun 'gossip %s --help' for usage\n", c.name, msg, c.name)
		return exitUsage
	}
	fmt.Fprintf(stderr, "gossip %s: %s\n", c.name, msg)
	return exitError
}

// flags starts the command's flag set with the common flags.
func (c *cli) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("gossip "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, help by parse
	def := os.Getenv("GOSSIP_DRIVER")
	if def == "" {
		def = "nats://127.0.0.1:4222"
	}
	fs.StringVar(&c.driver, "driver", def, "transport URL (env GOSSIP_DRIVER)")
	fs.StringVar(&c.source, "source", "gossip-cli", "the Source of events the command publishes")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long (0: no limit)")
	c.fs = fs
	return fs
}

// outputFlag adds -o for commands that print records.
func (c *cli) outputFlag() {
	c.fs.StringVar(&c.output, "o", "text", "output format: text or json")
}

// parse parses flags given anywhere among the positional arguments (the
// standard flag package stops at the first argument; this resumes after
// each one) and returns the positional arguments. "--" ends the flags.
func (c *cli) parse(args []string) ([]string, error) {
	var pos []string
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.help()
			return nil, err
		}
		if err != nil {
			return nil, usageError{err.Error()}
		}
		rest := c.fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if c.output != "" && c.output != "text" && c.output != "json" {
		return nil, usagef("-o %q: want text or json", c.output)
	}
	return pos, nil
}

// help prints the command's usage and flags to stdout.
func (c *cli) help() {
	fmt.Fprintf(c.stdout, "usage: gossip %s\n\n%s\n\nflags:\n", c.synopsis, c.about)
	c.fs.SetOutput(c.stdout)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// withTimeout bounds ctx by --timeout.
func (c *cli) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// logger is what the bus and the drivers log with: warnings and errors on
// stderr.
func (c *cli) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// open connects to the transport and returns a bus on the connection,
// which the caller shuts down.
func (c *cli) open(ctx context.Context, workers int) (*gossip.EventBus, driver.Conn, error) {
	return c.openDSN(ctx, c.driver, workers)
}

// openExisting is open for the commands that read what is stored: on
// JetStream it does not create the stream (a mistyped prefix is an error,
// not a new empty stream), unless the URL says create_stream itself.
func (c *cli) openExisting(ctx context.Context) (*gossip.EventBus, driver.Conn, error) {
	dsn := c.driver
	if strings.HasPrefix(dsn, "nats://") && !strings.Contains(dsn, "create_stream=") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "create_stream=false"
	}
	return c.openDSN(ctx, dsn, 1)
}

func (c *cli) openDSN(ctx context.Context, dsn string, workers int) (*gossip.EventBus, driver.Conn, error) {
	d, err := driver.Lookup(dsn)
	if err != nil {
		return nil, nil, usageError{err.Error()}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.Open(dctx, dsn, driver.Options{Source: c.source, Logger: c.logger()})
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", driver.Redact(c.driver), err)
	}
	bus, err := gossip.NewEventBus(&gossip.Config{Conn: conn, Source: c.source, Workers: workers, Logger: c.logger()})
	if err != nil {
		_ = conn.Close(context.Background())
		return nil, nil, err
	}
	return bus, conn, nil
}

// shutdown shuts bus down, reporting a failure on stderr.
func (c *cli) shutdown(bus *gossip.EventBus) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Shutdown(ctx); err != nil {
		fmt.Fprintf(c.stderr, "gossip %s: shutdown: %v\n", c.name, err)
	}
}

// printJSON writes v as one line of JSON.
func (c *cli) printJSON(v any) error {
	return json.NewEncoder(c.stdout).Encode(v)
}

// quietRedis keeps go-redis's own log lines (connection pool retries) off
// the terminal: the command reports the error itself.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { goredis.SetLogger(quietRedis{}) }

// age formats how long ago t was, for tables.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// table writes rows as aligned columns.
func table(w io.Writer, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, s := range r {
			width[i] = max(width[i], len(s))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, s := range r {
			if i == len(r)-1 {
				b.WriteString(s)
				break
			}
			b.WriteString(s + strings.Repeat(" ", width[i]-len(s)+2))
		}
		fmt.Fprintln(w, b.String())
	}
}
